-- name: mfa_device_removed
-- title: An MFA device deactivated or deleted
-- description: iam:DeactivateMFADevice and iam:DeleteVirtualMFADevice calls.
-- why: Removing a user's MFA leaves only the password between an attacker and the account.
-- techniques: T1556.006
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
    coalesce(json_extract_scalar(requestparameters, '$.userName'), json_extract_scalar(requestparameters, '$.serialNumber')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'iam.amazonaws.com'
    AND eventname IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')
