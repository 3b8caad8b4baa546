-- name: rolesanywhere_trust_anchor
-- title: An IAM Roles Anywhere trust anchor or profile created
-- description: rolesanywhere:CreateTrustAnchor, UpdateTrustAnchor and CreateProfile calls.
-- why: A trust anchor makes every certificate from an outside CA a credential for the account's
--   roles: persistence that survives every key rotation.
-- techniques: T1098.001, T1556
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
    json_extract_scalar(requestparameters, '$.name') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'rolesanywhere.amazonaws.com'
    AND eventname IN ('CreateTrustAnchor', 'UpdateTrustAnchor', 'CreateProfile')
