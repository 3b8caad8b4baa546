-- name: console_login_failures
-- title: Repeated failed console sign-ins from one IP
-- description: Failed console sign-ins from one source IP, when there are at least min_failures
--   of them in one clock hour.
-- why: Many failed passwords from one address is password guessing or credential stuffing.
-- techniques: T1110.001, T1110.004
-- severity: medium
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_failures = 5 | failed sign-ins from one IP in one hour that make a burst
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        5 AS min_failures
),
attempts AS (
    SELECT sourceipaddress AS ip, date_trunc('hour', eventtimestamp) AS hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND eventname = 'ConsoleLogin'
        AND json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Failure'
    GROUP BY sourceipaddress, date_trunc('hour', eventtimestamp)
    HAVING count(*) >= (SELECT min_failures FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.useridentity.arn AS arn,
    c.sourceipaddress, c.awsregion, c.recipientaccountid, c.errorcode,
    coalesce(c.errormessage, 'failed sign-in') AS detail
FROM cloudtrail_logs c
JOIN attempts a
    ON c.sourceipaddress = a.ip AND date_trunc('hour', c.eventtimestamp) = a.hour
WHERE c.eventtimestamp >= (SELECT window_start FROM params)
    AND c.eventtimestamp < (SELECT window_end FROM params)
    AND c.eventname = 'ConsoleLogin'
    AND json_extract_scalar(c.responseelements, '$.ConsoleLogin') = 'Failure'
