-- name: inline_policy_allows_everything
-- title: An inline policy allowing every action
-- description: iam:PutUserPolicy, PutRolePolicy and PutGroupPolicy calls whose policy document
--   allows the action "*" (or iam:*).
-- why: An inline admin policy does the same as attaching AdministratorAccess, and is easier to
--   overlook because it has no ARN.
-- techniques: T1098.003
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
    coalesce(json_extract_scalar(requestparameters, '$.userName'), json_extract_scalar(requestparameters, '$.roleName'), json_extract_scalar(requestparameters, '$.groupName')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname IN ('PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy')
    AND regexp_like(
        json_extract_scalar(requestparameters, '$.policyDocument'),
        '"Action"[^":]*:[^":a-zA-Z]*("[^"]*"[^":a-zA-Z]*)*"(iam:)?[*]"'
    )
