-- name: ssm_parameters_decrypted_in_bulk
-- title: Many SSM SecureString parameters decrypted
-- description: ssm:GetParameter, GetParameters and GetParametersByPath calls with decryption by
--   one principal for at least min_parameters distinct parameters in one clock hour.
-- why: SecureString parameters hold credentials; decrypting many at once is harvesting them.
-- techniques: T1555.006
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_parameters = 20 | distinct parameters in one hour that make it bulk
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        20 AS min_parameters
),
reads AS (
    SELECT useridentity.arn AS reader, date_trunc('hour', eventtimestamp) AS hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND eventsource = 'ssm.amazonaws.com' AND eventname IN ('GetParameter', 'GetParameters', 'GetParametersByPath') AND regexp_like(requestparameters, '"withDecryption"[ ]*:[ ]*true')
    GROUP BY useridentity.arn, date_trunc('hour', eventtimestamp)
    HAVING count(DISTINCT coalesce(json_extract_scalar(requestparameters, '$.name'), json_extract_scalar(requestparameters, '$.path'), requestparameters)) >= (SELECT min_parameters FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.useridentity.arn AS arn,
    c.sourceipaddress, c.awsregion, c.recipientaccountid, c.errorcode,
    coalesce(json_extract_scalar(c.requestparameters, '$.name'), json_extract_scalar(c.requestparameters, '$.path'), c.requestparameters) AS detail
FROM cloudtrail_logs c
JOIN reads r ON c.useridentity.arn = r.reader AND date_trunc('hour', c.eventtimestamp) = r.hour
WHERE c.eventtimestamp >= (SELECT window_start FROM params)
    AND c.eventtimestamp < (SELECT window_end FROM params)
    AND c.eventsource = 'ssm.amazonaws.com' AND c.eventname IN ('GetParameter', 'GetParameters', 'GetParametersByPath') AND regexp_like(c.requestparameters, '"withDecryption"[ ]*:[ ]*true')
