-- name: ami_shared
-- title: An AMI shared outside the account
-- description: ec2:ModifyImageAttribute calls adding launch permission for an account,
--   organisation or all.
-- why: An image holds the instance's disk: code, configuration and often credentials.
-- techniques: T1537
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
    json_extract_scalar(requestparameters, '$.imageId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ec2.amazonaws.com'
    AND eventname = 'ModifyImageAttribute'
    AND errorcode IS NULL
    AND regexp_like(requestparameters, '"launchPermission"[ ]*:[ ]*[{][ ]*"add"')
