-- name: lambda_code_updated
-- title: A Lambda function's code replaced
-- description: lambda:UpdateFunctionCode calls by people (not by CloudFormation or other
--   services).
-- why: Overwriting a function's code runs the attacker's code with the function's role, on every
--   invocation.
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
    json_extract_scalar(requestparameters, '$.functionName') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'lambda.amazonaws.com'
    AND eventname LIKE 'UpdateFunctionCode%'
    AND useridentity.invokedby IS NULL
