-- name: s3_bucket_made_public
-- title: A bucket made public
-- description: s3:PutBucketPolicy with an Allow for Principal "*", s3:PutBucketAcl granting
--   AllUsers or AuthenticatedUsers, and public access blocks removed or switched off.
-- why: A public bucket can be read by anyone on the internet, the most common cloud data leak.
-- techniques: T1530, T1562.007
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
    AND errorcode IS NULL
    AND (
        (
            eventname = 'PutBucketPolicy'
            AND regexp_like(requestparameters, '"Effect"[ ]*:[ ]*"Allow"')
            AND regexp_like(requestparameters, '"Principal"[ ]*:[ ]*([{][ ]*"AWS"[ ]*:[ ]*)?"[*]"')
        )
        OR (
            eventname = 'PutBucketAcl'
            AND regexp_like(requestparameters, 'acs[.]amazonaws[.]com/groups/global/(AllUsers|AuthenticatedUsers)')
        )
        OR eventname = 'DeleteBucketPublicAccessBlock'
        OR (
            eventname = 'PutBucketPublicAccessBlock'
            AND regexp_like(requestparameters, '"(BlockPublicPolicy|RestrictPublicBuckets|BlockPublicAcls|IgnorePublicAcls)"[ ]*:[ ]*false')
        )
    )
