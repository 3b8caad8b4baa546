-- name: ec2_password_data_read
-- title: Windows password data read for many instances
-- description: ec2:GetPasswordData calls by one principal for at least min_instances instances
--   in one clock hour, failed ones included.
-- why: GetPasswordData returns the encrypted Administrator password of Windows instances; asking
--   for many at once is credential harvesting.
-- techniques: T1552
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_instances = 5 | distinct instances in one hour that make it bulk
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        5 AS min_instances
),
reads AS (
    SELECT useridentity.arn AS reader, date_trunc('hour', eventtimestamp) AS hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND eventsource = 'ec2.amazonaws.com' AND eventname = 'GetPasswordData'
    GROUP BY useridentity.arn, date_trunc('hour', eventtimestamp)
    HAVING count(DISTINCT json_extract_scalar(requestparameters, '$.instanceId')) >= (SELECT min_instances FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.useridentity.arn AS arn,
    c.sourceipaddress, c.awsregion, c.recipientaccountid, c.errorcode,
    json_extract_scalar(c.requestparameters, '$.instanceId') AS detail
FROM cloudtrail_logs c
JOIN reads r ON c.useridentity.arn = r.reader AND date_trunc('hour', c.eventtimestamp) = r.hour
WHERE c.eventtimestamp >= (SELECT window_start FROM params)
    AND c.eventtimestamp < (SELECT window_end FROM params)
    AND c.eventsource = 'ec2.amazonaws.com' AND c.eventname = 'GetPasswordData'
