-- name: cloudtrail_selectors_narrowed
-- title: A trail's event selectors narrowed
-- description: cloudtrail:PutEventSelectors calls that drop management events, log only reads or
--   only writes, or exclude management event sources; and PutInsightSelectors calls.
-- why: Narrowed selectors leave the trail running while it stops recording what the attacker
--   does.
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
    json_extract_scalar(requestparameters, '$.trailName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'cloudtrail.amazonaws.com'
    AND (
        eventname = 'PutInsightSelectors'
        OR (
            eventname = 'PutEventSelectors'
            AND (
                regexp_like(requestparameters, '"includeManagementEvents"[ ]*:[ ]*false')
                OR regexp_like(requestparameters, '"readWriteType"[ ]*:[ ]*"(ReadOnly|WriteOnly)"')
                OR regexp_like(requestparameters, '"excludeManagementEventSources"[ ]*:[ ]*.[ ]*"')
                OR regexp_like(requestparameters, '"advancedEventSelectors"')
            )
        )
    )
