-- name: lambda_layer_changed
-- title: A Lambda layer added or shared
-- description: lambda:PublishLayerVersion and AddLayerVersionPermission calls, and
--   UpdateFunctionConfiguration calls that set layers.
-- why: A layer is code loaded into the function before its own: a backdoor that survives code
--   updates.
-- techniques: T1648, T1525
-- severity: medium
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
    coalesce(json_extract_scalar(requestparameters, '$.functionName'), json_extract_scalar(requestparameters, '$.layerName')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'lambda.amazonaws.com'
    AND (
        eventname LIKE 'PublishLayerVersion%'
        OR eventname LIKE 'AddLayerVersionPermission%'
        OR (eventname LIKE 'UpdateFunctionConfiguration%'
            AND regexp_like(requestparameters, '"layers"[ ]*:[ ]*.[ ]*"'))
    )
