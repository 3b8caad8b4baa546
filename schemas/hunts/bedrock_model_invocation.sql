-- name: bedrock_model_invocation
-- title: Bedrock models invoked or model access probed
-- description: bedrock:InvokeModel, InvokeModelWithResponseStream, Converse and ConverseStream
--   calls, and the model-access probes (GetFoundationModelAvailability,
--   ListFoundationModels, PutUseCaseForModelAccess, CreateFoundationModelAgreement),
--   and model invocation logging deleted.
-- why: Stolen keys are sold for LLM access (LLMjacking): first the thief checks which models are
--   enabled, then the account pays for their prompts.
-- techniques: T1496.004, T1562.008
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
    json_extract_scalar(requestparameters, '$.modelId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'bedrock.amazonaws.com'
    AND eventname IN (
        'InvokeModel', 'InvokeModelWithResponseStream', 'Converse', 'ConverseStream',
        'GetFoundationModelAvailability', 'ListFoundationModels', 'PutUseCaseForModelAccess',
        'CreateFoundationModelAgreement', 'DeleteModelInvocationLoggingConfiguration'
    )
