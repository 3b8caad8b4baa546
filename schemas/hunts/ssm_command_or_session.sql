-- name: ssm_command_or_session
-- title: Commands sent or sessions started through SSM
-- description: ssm:SendCommand, StartSession and ResumeSession calls by people (not by
--   services).
-- why: SSM runs code on instances as root without SSH keys or open ports: a favourite way to
--   move from the control plane onto machines.
-- techniques: T1651, T1021.007
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
    coalesce(json_extract_scalar(requestparameters, '$.documentName'), json_extract_scalar(requestparameters, '$.target')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ssm.amazonaws.com'
    AND eventname IN ('SendCommand', 'StartSession', 'ResumeSession')
    AND useridentity.invokedby IS NULL
