-- name: root_activity
-- title: The root user was used
-- description: Calls made by the account's root user (also through sts:AssumeRoot), one row per
--   account, source IP and day: the first call, with the number of calls in that
--   session.
-- why: Root can do anything and cannot be restricted by IAM policy; day-to-day work should never
--   use it, so any session is worth a look.
-- techniques: T1078.004
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end
),
ranked AS (
    SELECT
        eventid, eventtime, eventsource, eventname, useridentity.arn AS arn, sourceipaddress,
        awsregion, recipientaccountid, errorcode,
        row_number() OVER (
            PARTITION BY recipientaccountid, sourceipaddress, date_trunc('day', eventtimestamp)
            ORDER BY eventtimestamp, eventid
        ) AS call_in_day,
        count(*) OVER (
            PARTITION BY recipientaccountid, sourceipaddress, date_trunc('day', eventtimestamp)
        ) AS calls_in_day
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND useridentity.type = 'Root'
        AND useridentity.invokedby IS NULL
        AND coalesce(eventtype, '') <> 'AwsServiceEvent'
)
SELECT
    eventid, eventtime, eventsource, eventname, arn, sourceipaddress, awsregion,
    recipientaccountid, errorcode,
    concat(CAST(calls_in_day AS VARCHAR), ' root calls from this IP that day') AS detail
FROM ranked
WHERE call_in_day = 1
