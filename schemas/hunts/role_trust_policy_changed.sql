-- name: role_trust_policy_changed
-- title: A role's trust policy changed
-- description: iam:UpdateAssumeRolePolicy calls: who may assume the role has changed.
-- why: Adding an outside account or principal to a role's trust policy is a quiet backdoor: the
--   role keeps its permissions and gains a new way in.
-- techniques: T1098.003, T1484.002
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end
)
SELECT
    eventid,
    eventtime,
    eventsource,
    eventname,
    useridentity.arn AS arn,
    sourceipaddress,
    awsregion,
    recipientaccountid,
    errorcode,
    json_extract_scalar(requestparameters, '$.roleName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname = 'UpdateAssumeRolePolicy'
