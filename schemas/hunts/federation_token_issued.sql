-- name: federation_token_issued
-- title: A federation token issued
-- description: sts:GetFederationToken calls by IAM users.
-- why: A federation token keeps working after the user's access key is deleted (for up to 36
--   hours), and attackers use it to survive a key rotation.
-- techniques: T1550.001, T1078.004
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
    json_extract_scalar(requestparameters, '$.name') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'sts.amazonaws.com'
    AND eventname = 'GetFederationToken'
