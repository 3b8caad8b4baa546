-- name: ec2_instance_connect_key_pushed
-- title: An SSH key pushed with EC2 Instance Connect or to the serial console
-- description: ec2-instance-connect:SendSSHPublicKey and SendSerialConsoleSSHPublicKey calls,
--   and ec2:EnableSerialConsoleAccess.
-- why: Pushing a key gives a shell on the instance for a minute, enough to plant persistence;
--   the serial console even bypasses the network.
-- techniques: T1098.004, T1021.004
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
    concat(coalesce(json_extract_scalar(requestparameters, '$.instanceId'), 'account'), ' as ', coalesce(json_extract_scalar(requestparameters, '$.instanceOSUser'), '-')) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND (
        (eventsource = 'ec2-instance-connect.amazonaws.com'
            AND eventname IN ('SendSSHPublicKey', 'SendSerialConsoleSSHPublicKey'))
        OR (eventsource = 'ec2.amazonaws.com' AND eventname = 'EnableSerialConsoleAccess')
    )
