-- name: iam_access_key_created
-- title: A new access key
-- description: Successful iam:CreateAccessKey calls; the detail names the user the key is for,
--   which is another user than the caller when it is a backdoor.
-- why: A long-term access key outlives a password reset and works from anywhere.
-- techniques: T1098.001
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
    concat('key for ', coalesce(json_extract_scalar(requestparameters, '$.userName'), useridentity.username, 'the caller')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname = 'CreateAccessKey'
    AND errorcode IS NULL
