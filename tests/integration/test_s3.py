"""The same ingest and query code on S3, spoken over HTTP to a local moto server."""

from __future__ import annotations

from flows.ingest import run_ingest
from flows.query import run_query
from tests.helpers import records_of


def test_ingest_and_query_on_s3(s3, shared_data):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    files = sorted((shared_data / "invictus-ir" / "AWSLogs").rglob("*.json.gz"))[:5]
    for path in files:
        key = path.relative_to(shared_data / "invictus-ir").as_posix()
        client.put_object(Bucket="trail", Key=key, Body=path.read_bytes())

    summary = run_ingest("s3://trail/AWSLogs/", "s3://lake/cloudtrail/", lookback_days=0)
    expected = sum(len(records_of(p)) for p in files)
    assert summary.problems == []
    assert summary.events_written == expected
    assert summary.events_table == "s3://lake/cloudtrail/events"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"]]
    assert any(
        k.startswith("cloudtrail/events/region=us-east-1/year=2023/month=07/day=10/part-")
        for k in keys
    )
    assert not any("_staging" in k for k in keys)

    again = run_ingest("s3://trail/AWSLogs/", "s3://lake/cloudtrail/", lookback_days=0)
    assert again.objects_converted == 0
    assert again.days_complete == len({p.parent for p in files})  # days done (listed: empty)
    assert again.as_json()["requests"]["source"]["get"] == 0
    count = run_query("s3://lake/cloudtrail/", "SELECT count(*) AS n FROM cloudtrail_logs")
    assert count.table.to_pylist() == [{"n": expected}]
