-- name: secrets_read_in_bulk
-- title: Many secrets read by one principal
-- description: secretsmanager:GetSecretValue and BatchGetSecretValue calls by one principal for
--   at least min_secrets distinct secrets in one clock hour.
-- why: Applications read the few secrets they need; reading many at once is an attacker emptying
--   the store.
-- techniques: T1555.006
-- severity: high
-- param: window_start = current_timestamp - INTERVAL '1' DAY | the first event time looked at
-- param: window_end = current_timestamp | look at events before this time
-- param: min_secrets = 20 | distinct secrets in one hour that make it bulk
WITH params AS (
    SELECT
        current_timestamp - INTERVAL '1' DAY AS window_start,
        current_timestamp AS window_end,
        20 AS min_secrets
),
reads AS (
    SELECT useridentity.arn AS reader, date_trunc('hour', eventtimestamp) AS hour
    FROM cloudtrail_logs
    WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
        AND eventsource = 'secretsmanager.amazonaws.com' AND eventname IN ('GetSecretValue', 'BatchGetSecretValue')
    GROUP BY useridentity.arn, date_trunc('hour', eventtimestamp)
    HAVING count(DISTINCT coalesce(json_extract_scalar(requestparameters, '$.secretId'), requestparameters)) >= (SELECT min_secrets FROM params)
)
SELECT
    c.eventid, c.eventtime, c.eventsource, c.eventname, c.useridentity.arn AS arn,
    c.sourceipaddress, c.awsregion, c.recipientaccountid, c.errorcode,
    coalesce(json_extract_scalar(c.requestparameters, '$.secretId'), c.requestparameters) AS detail
FROM cloudtrail_logs c
JOIN reads r ON c.useridentity.arn = r.reader AND date_trunc('hour', c.eventtimestamp) = r.hour
WHERE c.eventtimestamp >= (SELECT window_start FROM params)
    AND c.eventtimestamp < (SELECT window_end FROM params)
    AND c.eventsource = 'secretsmanager.amazonaws.com' AND c.eventname IN ('GetSecretValue', 'BatchGetSecretValue')
