-- name: lambda_permission_added
-- title: A Lambda function opened to another principal
-- description: lambda:AddPermission calls granting invocation to "*" or to another account.
-- why: A resource policy that lets anyone invoke a function turns it into a public entry point.
-- techniques: T1546, T1648
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
    concat(json_extract_scalar(requestparameters, '$.functionName'), ' to ', json_extract_scalar(requestparameters, '$.principal')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'lambda.amazonaws.com'
    AND eventname LIKE 'AddPermission%'
    AND (
        json_extract_scalar(requestparameters, '$.principal') = '*'
        OR regexp_like(
            regexp_replace(json_extract_scalar(requestparameters, '$.principal'), recipientaccountid, ''),
            '[0-9]{12}'
        )
    )
