-- name: kms_key_deletion_scheduled
-- title: A KMS key scheduled for deletion or disabled
-- description: kms:ScheduleKeyDeletion and DisableKey calls.
-- why: Deleting the key destroys every piece of data encrypted under it: ransom without copying
--   the data.
-- techniques: T1485, T1486
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
    json_extract_scalar(requestparameters, '$.keyId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'kms.amazonaws.com'
    AND eventname IN ('ScheduleKeyDeletion', 'DisableKey')
