-- name: login_profile_created_or_updated
-- title: A console password set for a user
-- description: iam:CreateLoginProfile and iam:UpdateLoginProfile calls: a console password given
--   to a user, or another user's password changed.
-- why: Giving a programmatic user a console password, or resetting someone else's, opens the
--   console to whoever chose the password.
-- techniques: T1098.001, T1078.004
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
    concat('password for ', coalesce(json_extract_scalar(requestparameters, '$.userName'), '?')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname IN ('CreateLoginProfile', 'UpdateLoginProfile')
