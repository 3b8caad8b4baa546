-- name: config_disabled
-- title: AWS Config recording stopped or deleted
-- description: config:StopConfigurationRecorder, DeleteConfigurationRecorder,
--   DeleteDeliveryChannel, DeleteConfigRule and DeleteConformancePack calls.
-- why: Config keeps the history of every resource's configuration; stopping it hides what
--   changed.
-- techniques: T1562.001
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
    CAST(NULL AS VARCHAR) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'config.amazonaws.com'
    AND eventname IN (
        'StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel',
        'DeleteConfigRule', 'DeleteConformancePack'
    )
