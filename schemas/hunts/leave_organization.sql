-- name: leave_organization
-- title: An account leaving the organisation
-- description: organizations:LeaveOrganization and RemoveAccountFromOrganization calls, failed
--   ones included.
-- why: Outside the organisation, its service control policies and central logging no longer
--   apply.
-- techniques: T1666, T1562
-- severity: critical
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
    json_extract_scalar(requestparameters, '$.accountId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'organizations.amazonaws.com'
    AND eventname IN ('LeaveOrganization', 'RemoveAccountFromOrganization')
