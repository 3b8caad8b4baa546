-- name: iam_user_created
-- title: A new IAM user
-- description: Successful iam:CreateUser calls, with the new user's name.
-- why: A new user is the simplest way to keep access after the first foothold is closed.
-- techniques: T1136.003
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
    json_extract_scalar(requestparameters, '$.userName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname = 'CreateUser'
    AND errorcode IS NULL
