-- name: admin_policy_attached
-- title: An administrator policy attached
-- description: AdministratorAccess, PowerUserAccess, IAMFullAccess or an iam:* policy attached
--   to a user, group or role.
-- why: Attaching an admin policy to a principal the attacker controls is the shortest path to
--   owning the account.
-- techniques: T1098.003, T1078.004
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
    concat(coalesce(json_extract_scalar(requestparameters, '$.userName'), json_extract_scalar(requestparameters, '$.roleName'), json_extract_scalar(requestparameters, '$.groupName')), ' <- ', json_extract_scalar(requestparameters, '$.policyArn')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy')
    AND regexp_like(
        json_extract_scalar(requestparameters, '$.policyArn'),
        ':policy/(AdministratorAccess|PowerUserAccess|IAMFullAccess)$'
    )
