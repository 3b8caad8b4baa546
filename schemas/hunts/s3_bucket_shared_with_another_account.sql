-- name: s3_bucket_shared_with_another_account
-- title: A bucket policy granting another account
-- description: s3:PutBucketPolicy calls whose policy names an AWS account other than the
--   bucket's own.
-- why: Granting an outside account read on a bucket is exfiltration that needs no download from
--   inside.
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
    json_extract_scalar(requestparameters, '$.bucketName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 's3.amazonaws.com'
    AND eventname = 'PutBucketPolicy'
    AND errorcode IS NULL
    AND regexp_like(
        regexp_replace(requestparameters, concat('arn:aws:iam::', recipientaccountid, ':'), ''),
        'arn:aws:iam::[0-9]{12}:'
    )
