-- name: security_group_open_to_world
-- title: A security group opened to the internet
-- description: ec2:AuthorizeSecurityGroupIngress calls allowing 0.0.0.0/0 or ::/0 on all
--   protocols or on a port other than 80 and 443.
-- why: SSH, RDP or a database open to the internet is a way in for anyone; web ports are left
--   out because load balancers need them.
-- techniques: T1562.007, T1190
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
    json_extract_scalar(requestparameters, '$.groupId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ec2.amazonaws.com'
    AND eventname = 'AuthorizeSecurityGroupIngress'
    AND errorcode IS NULL
    AND regexp_like(requestparameters, '"cidrIp(v6)?"[ ]*:[ ]*"(0[.]0[.]0[.]0/0|::/0)"')
    AND (
        regexp_like(requestparameters, '"ipProtocol"[ ]*:[ ]*"(-1|all)"')
        OR regexp_like(
            regexp_replace(requestparameters, '"fromPort"[ ]*:[ ]*(80|443)[ ]*,', ''),
            '"fromPort"[ ]*:'
        )
    )
