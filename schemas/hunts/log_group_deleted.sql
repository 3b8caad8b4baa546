-- name: log_group_deleted
-- title: CloudWatch log groups or streams deleted
-- description: logs:DeleteLogGroup and DeleteLogStream calls by people (not by services).
-- why: Application and system logs are evidence too; deleting them is indicator removal.
-- techniques: T1070, T1485
-- severity: medium
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
    json_extract_scalar(requestparameters, '$.logGroupName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'logs.amazonaws.com'
    AND eventname IN ('DeleteLogGroup', 'DeleteLogStream')
    AND useridentity.invokedby IS NULL
