-- name: unusual_instance_types
-- title: Instances of GPU or very large types launched
-- description: ec2:RunInstances calls (failed ones included) for GPU, accelerator, high-memory
--   or bare-metal instance types.
-- why: Crypto-miners ask for GPU and large instances, often in many regions and hitting vCPU
--   limits: the failed attempts are the signal.
-- techniques: T1496.001
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
    json_extract_scalar(requestparameters, '$.instanceType') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ec2.amazonaws.com'
    AND eventname = 'RunInstances'
    AND regexp_like(
        json_extract_scalar(requestparameters, '$.instanceType'),
        '^(p[0-9]|g[0-9]|inf[0-9]|trn[0-9]|dl[0-9]|f[0-9]|vt[0-9]|x[0-9]|u-)|[.]metal|[.](16|18|24|32|48)xlarge$'
    )
