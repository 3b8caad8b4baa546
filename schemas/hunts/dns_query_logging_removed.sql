-- name: dns_query_logging_removed
-- title: DNS query logging removed
-- description: Route 53 Resolver DeleteResolverQueryLogConfig and
--   DisassociateResolverQueryLogConfig, and Route 53 DeleteQueryLoggingConfig calls.
-- why: DNS query logs show command-and-control and exfiltration domains; removing them is
--   cleanup before or after the fact.
-- techniques: T1562.008
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
    CAST(NULL AS VARCHAR) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventname IN (
        'DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig', 'DeleteQueryLoggingConfig'
    )
