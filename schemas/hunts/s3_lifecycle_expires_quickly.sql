-- name: s3_lifecycle_expires_quickly
-- title: A bucket lifecycle rule that deletes objects within days
-- description: s3:PutBucketLifecycle calls with an expiration of at most max_expiration_days
--   days: on a trail's bucket, this deletes the logs.
-- why: A short expiration on the log bucket erases the evidence without touching the trail
--   itself.
-- techniques: T1562.008, T1485
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: max_expiration_days = 7 | expiration (days) at or under which a rule is flagged
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        7 AS max_expiration_days
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
    json_extract_scalar(requestparameters, '$.bucketName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 's3.amazonaws.com'
    AND eventname = 'PutBucketLifecycle'
    AND TRY_CAST(
        regexp_extract(requestparameters, '"Expiration"[ ]*:[ ]*[{][^}]*"Days"[ ]*:[ ]*"?([0-9]+)', 1)
        AS INTEGER
    ) <= (SELECT max_expiration_days FROM params)
