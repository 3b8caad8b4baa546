-- name: flow_logs_deleted
-- title: VPC flow logs deleted
-- description: ec2:DeleteFlowLogs calls.
-- why: Flow logs record network traffic; deleting them blinds the network side of an
--   investigation.
-- techniques: T1562.008
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
    regexp_extract(requestparameters, 'fl-[0-9a-f]+', 0) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ec2.amazonaws.com'
    AND eventname = 'DeleteFlowLogs'
