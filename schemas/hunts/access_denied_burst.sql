-- name: access_denied_burst
-- title: A burst of access-denied errors from one principal
-- description: Calls refused for permissions (AccessDenied, UnauthorizedOperation and their kin)
--   by one principal, when there are at least min_denied of them over at least
--   min_apis different APIs in one clock hour.
-- why: Stolen credentials are tried against everything to learn what they can do; working
--   software rarely fails on many different APIs at once.
-- techniques: T1580, T1526, T1087.004
-- severity: medium
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_denied = 10 | refused calls in one hour that make a burst
-- param: min_apis = 3 | different APIs among them
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        10 AS min_denied,
        3 AS min_apis
),
denied AS (
    SELECT useridentity.arn AS principal, date_trunc('hour', eventtimestamp) AS hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND (errorcode LIKE '%AccessDenied%' OR errorcode LIKE '%UnauthorizedOperation%'
            OR errorcode IN ('AuthorizationError', 'Forbidden', 'UnauthorizedAccess'))
        AND useridentity.arn IS NOT NULL
    GROUP BY useridentity.arn, date_trunc('hour', eventtimestamp)
    HAVING count(*) >= (SELECT min_denied FROM params)
        AND count(DISTINCT eventname) >= (SELECT min_apis FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.useridentity.arn AS arn,
    c.sourceipaddress, c.awsregion, c.recipientaccountid, c.errorcode,
    c.errorcode AS detail
FROM cloudtrail_logs c
JOIN denied d
    ON c.useridentity.arn = d.principal AND date_trunc('hour', c.eventtimestamp) = d.hour
WHERE c.eventtimestamp >= (SELECT window_start FROM params)
    AND c.eventtimestamp < (SELECT window_end FROM params)
    AND (c.errorcode LIKE '%AccessDenied%' OR c.errorcode LIKE '%UnauthorizedOperation%'
        OR c.errorcode IN ('AuthorizationError', 'Forbidden', 'UnauthorizedAccess'))
