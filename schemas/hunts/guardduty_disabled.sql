-- name: guardduty_disabled
-- title: GuardDuty disabled or its findings suppressed
-- description: guardduty:DeleteDetector, UpdateDetector, DisassociateFromMasterAccount,
--   DisassociateFromAdministratorAccount, DeleteMembers, StopMonitoringMembers,
--   DeletePublishingDestination, CreateFilter and CreateIPSet/UpdateIPSet calls.
-- why: GuardDuty is the detector watching for the rest of the attack; an attacker turns it off,
--   auto-archives its findings, or trusts their own IPs.
-- techniques: T1562.001
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
    json_extract_scalar(requestparameters, '$.detectorId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'guardduty.amazonaws.com'
    AND eventname IN (
        'DeleteDetector', 'UpdateDetector', 'DisassociateFromMasterAccount',
        'DisassociateFromAdministratorAccount', 'DeleteMembers', 'StopMonitoringMembers',
        'DeletePublishingDestination', 'CreateFilter', 'CreateIPSet', 'UpdateIPSet'
    )
