-- name: ebs_snapshot_shared
-- title: An EBS snapshot shared outside the account
-- description: ec2:ModifySnapshotAttribute calls adding create-volume permission for an account
--   or for all.
-- why: A shared snapshot is a full copy of a disk, restorable in the receiving account.
-- techniques: T1537
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
    json_extract_scalar(requestparameters, '$.snapshotId') AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'ec2.amazonaws.com'
    AND eventname = 'ModifySnapshotAttribute'
    AND errorcode IS NULL
    AND regexp_like(requestparameters, '"add"[ ]*:[ ]*[{][ ]*"items"[ ]*:[ ]*.[ ]*[{][ ]*"(userId|group)"')
