-- name: rds_snapshot_shared
-- title: An RDS snapshot shared outside the account
-- description: rds:ModifyDBSnapshotAttribute and ModifyDBClusterSnapshotAttribute calls adding
--   an account (or all) to the restore attribute.
-- why: A shared database snapshot is the whole database, restorable by the receiving account.
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
    concat(coalesce(json_extract_scalar(requestparameters, '$.dBSnapshotIdentifier'), json_extract_scalar(requestparameters, '$.dBClusterSnapshotIdentifier')), ' -> ', regexp_extract(requestparameters, '"valuesToAdd"[ ]*:[ ]*.[ ]*"([^"]*)"', 1)) AS detail
FROM cloudtrail_logs
WHERE eventtimestamp >= (SELECT window_start FROM params)
    AND eventtimestamp < (SELECT window_end FROM params)
    AND eventsource = 'rds.amazonaws.com'
    AND eventname IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
    AND errorcode IS NULL
    AND regexp_like(requestparameters, '"valuesToAdd"[ ]*:[ ]*.[ ]*"')
