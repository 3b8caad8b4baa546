-- name: enumeration_by_one_principal
-- title: One principal enumerating the account
-- description: A principal calling at least min_apis different List, Describe and Get APIs
--   across at least min_services services in one clock hour; one row per principal
--   and hour (its first such call).
-- why: Discovery comes before every other step: a fresh credential is used to map the account,
--   touching many services that its owner never uses together.
-- techniques: T1580, T1526, T1087.004, T1069.003
-- severity: low
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_apis = 40 | different read APIs in one hour
-- param: min_services = 6 | different services among them
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        40 AS min_apis,
        6 AS min_services
),
calls AS (
    SELECT
        eventid, eventtime, eventsource, eventname, useridentity.arn AS arn, sourceipaddress,
        awsregion, recipientaccountid, errorcode,
        date_trunc('hour', eventtimestamp) AS hour,
        row_number() OVER (
            PARTITION BY useridentity.arn, date_trunc('hour', eventtimestamp)
            ORDER BY eventtimestamp, eventid
        ) AS call_in_hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND regexp_like(eventname, '^(List|Describe|Get)')
        AND useridentity.arn IS NOT NULL
        AND useridentity.invokedby IS NULL
),
busy AS (
    SELECT arn AS principal, hour, count(DISTINCT eventname) AS apis,
        count(DISTINCT eventsource) AS services
    FROM calls
    GROUP BY arn, hour
    HAVING count(DISTINCT eventname) >= (SELECT min_apis FROM params)
        AND count(DISTINCT eventsource) >= (SELECT min_services FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.arn, c.sourceipaddress, c.awsregion,
    c.recipientaccountid, c.errorcode,
    concat(CAST(b.apis AS VARCHAR), ' read APIs over ', CAST(b.services AS VARCHAR),
        ' services in the hour') AS detail
FROM calls c
JOIN busy b ON c.arn = b.principal AND c.hour = b.hour
WHERE c.call_in_hour = 1
