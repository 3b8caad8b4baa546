-- name: console_login_without_mfa
-- title: Console sign-in without MFA
-- description: Successful console sign-ins of IAM users and root where CloudTrail records
--   MFAUsed = No (federated sign-ins are left out: their identity provider does MFA).
-- why: A password alone is what phishing and credential stuffing steal; a console session
--   without MFA is the classic first step into an account.
-- techniques: T1078.004, T1556.006
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
    concat('MFAUsed=No for ', coalesce(useridentity.username, useridentity.type)) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventname = 'ConsoleLogin'
    AND json_extract_scalar(additionaleventdata, '$.MFAUsed') = 'No'
    AND json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Success'
    AND useridentity.type IN ('IAMUser', 'Root')
