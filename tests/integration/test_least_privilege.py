"""Least privilege and safe defaults, checked against what the code really sends.

Every S3 request of an ingest, a re-drive and a no-op rerun from the bucket root (the
README's ``s3://BUCKET/`` form of SOURCE; SSE-KMS on, source objects encrypted by a trail
key, API and Insights events) is recorded by the proxy in front of moto,
turned into the IAM authorisations it needs, and evaluated against
``deploy/iam-policy.json``: all must be allowed, every S3/KMS grant must be used,
and what the pipeline must never do must be refused. The reader bucket policy is
checked the same way against local queries of both tables.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from flows.ingest import run_ingest
from flows.query import run_query
from flows.redriving import run_redrive
from flows.settings import Settings
from tests.compat import insight_records, write_logs
from tests.fault_proxy import s3_through_proxy
from tests.hostile import build_hostile_corpus
from tests.iam import Call, allowed_actions, calls_of_requests, denied, is_allowed, load_policy
from tests.s3_server import REGION

ACCOUNT = "123456789012"
READER = f"arn:aws:iam::{ACCOUNT}:role/security-analyst"
SOURCE, DEST = "s3://trail/AWSLogs/", "s3://lake/cloudtrail/"
BUCKET_ROOT = "s3://trail/"  # the README's other form of SOURCE: AWSLogs/ found below it
UNEXERCISED = {
    "s3:AbortMultipartUpload": "only when a multipart upload (a file over 100 MB) fails",
    "s3:DeleteObject": "compaction and a rerun replacing its own file; ingest writes single PUTs",
}


@pytest.fixture(scope="module")
def recorded(s3_endpoint, tmp_path_factory):
    """Run the pipeline on S3 through the recording proxy; its requests and the values used."""
    import s3fs

    s3 = s3_endpoint
    s3.reset()
    s3fs.S3FileSystem.clear_instance_cache()
    tmp_path = tmp_path_factory.mktemp("least-privilege")
    client = s3.client()
    kms = s3.client("kms")
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail_key = kms.create_key(Description="the trail's key")["KeyMetadata"]["Arn"]
    table_key = kms.create_key(Description="the table's key")["KeyMetadata"]["Arn"]
    corpus = build_hostile_corpus(tmp_path / "trail")
    write_logs(corpus.root, insight_records(), kind="CloudTrail-Insight")
    for path in sorted(p for p in corpus.root.rglob("*") if p.is_file()):
        client.put_object(
            Bucket="trail",
            Key=path.relative_to(corpus.root).as_posix(),
            Body=path.read_bytes(),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=trail_key,
        )
    settings = Settings(sse_kms_key_id=table_key)
    with s3_through_proxy(s3.url) as proxy:
        first = run_ingest(SOURCE, DEST, settings=settings, lookback_days=0)
        run_redrive(DEST, settings=settings)
        again = run_ingest(BUCKET_ROOT, DEST, lookback_days=0, settings=settings)
        pipeline = list(proxy.requests)
        proxy.requests.clear()
        run_query(DEST, "SELECT eventname, count(*) FROM cloudtrail_logs GROUP BY 1")
        insights = run_query(DEST, "SELECT eventid FROM t", kind="insights")
        reader = list(proxy.requests)
    assert first.events_written == len(corpus.good) and again.objects_converted == 0
    assert first.insight_events_written == insights.table.num_rows == 2
    # The same day folders, found from the bucket root, each listed again and found complete.
    assert again.days_listed == first.days_listed == again.days_complete > first.days_complete
    values = {
        "SOURCE_BUCKET": "trail",
        "SOURCE_PREFIX": "AWSLogs",
        "LAKE_BUCKET": "lake",
        "LAKE_PREFIX": "cloudtrail",
        "TABLE_KMS_KEY_ARN": table_key,
        "TRAIL_KMS_KEY_ARN": trail_key,
        "REGION": REGION,
        "ACCOUNT_ID": ACCOUNT,
        "GLUE_DATABASE": "security",
        "READER_ROLE_ARN": READER,
    }
    return {"pipeline": pipeline, "reader": reader, "values": values, "client": client}


def test_every_call_the_pipeline_makes_is_allowed_and_every_grant_is_used(recorded):
    policy = load_policy("iam-policy.json", recorded["values"])
    calls = calls_of_requests(recorded["pipeline"], REGION)
    refused = denied(policy, calls)
    assert refused == [], "\n".join(f"{c.action} {c.resource} ({c.request})" for c in refused)

    root_listings = [
        c for c in calls if c.resource == "arn:aws:s3:::trail" and c.context.get("s3:prefix") == ""
    ]
    assert root_listings, "the rerun from s3://trail/ lists the bucket root"

    used = {c.action for c in calls}
    granted = allowed_actions(policy, "s3") | allowed_actions(policy, "kms")
    assert granted - used == set(UNEXERCISED), "a grant the code never needs"
    assert {a.split(":")[0] for a in used} <= {"s3", "kms", "glue"}
    assert {c.resource for c in calls if c.action == "kms:Decrypt"} == {
        recorded["values"]["TRAIL_KMS_KEY_ARN"],  # reading the logs
        recorded["values"]["TABLE_KMS_KEY_ARN"],  # reading back its own files
    }
    # Glue is granted for `register` (issue 5) and only on one database; Athena not at all.
    assert allowed_actions(policy, "athena") == set()
    for statement in policy["Statement"]:
        if any(a.startswith("glue:") for a in statement["Action"]):
            assert all(
                ":table/security/" in r or r.endswith((":catalog", ":database/security"))
                for r in statement["Resource"]
            )


def refused_calls(values: dict[str, str]) -> list[Call]:
    """What the pipeline's role must never be able to do."""
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    return [
        Call("s3:PutObject", "arn:aws:s3:::trail/AWSLogs/111122223333/x.json.gz"),
        Call("s3:DeleteObject", "arn:aws:s3:::trail/AWSLogs/111122223333/x.json.gz"),
        Call("s3:PutObjectAcl", "arn:aws:s3:::trail/AWSLogs/111122223333/x.json.gz"),
        Call("s3:GetObject", "arn:aws:s3:::trail/other/secret.txt"),
        Call("s3:ListBucket", "arn:aws:s3:::trail", {"s3:prefix": ""}),
        Call("s3:ListBucket", "arn:aws:s3:::trail", {"s3:prefix": "other/"}),
        Call("s3:ListBucket", "arn:aws:s3:::lake"),  # HeadBucket: why Storage never probes it
        Call("s3:ListBucket", "arn:aws:s3:::lake", {"s3:prefix": "finance/"}),
        Call("s3:GetObject", "arn:aws:s3:::lake/finance/payroll.parquet"),
        Call("s3:PutObject", "arn:aws:s3:::lake/finance/payroll.parquet"),
        Call("s3:PutObject", "arn:aws:s3:::lake/cloudtrailx/events/x.parquet"),
        Call("s3:PutBucketPolicy", "arn:aws:s3:::lake"),
        Call("s3:CreateBucket", "arn:aws:s3:::lake"),
        Call("s3:DeleteBucket", "arn:aws:s3:::lake"),
        Call("kms:Decrypt", values["TABLE_KMS_KEY_ARN"]),  # not through S3
        Call("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/someone-else", via_s3),
        Call("kms:ScheduleKeyDeletion", values["TABLE_KMS_KEY_ARN"], via_s3),
        Call("glue:CreateTable", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/finance/payroll"),
        Call("glue:DeleteTable", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/security/cloudtrail"),
        Call("glue:DeleteDatabase", f"arn:aws:glue:{REGION}:{ACCOUNT}:database/security"),
        Call("athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary"),
        Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin"),
    ]


def test_the_policy_refuses_what_the_pipeline_must_never_do(recorded):
    values = recorded["values"]
    policy = load_policy("iam-policy.json", values)
    calls = refused_calls(values)
    assert [c for c in calls if is_allowed(policy, c)] == []
    # The logs stay read-only even beside a careless grant attached to the same role.
    careless = {**policy, "Statement": [*policy["Statement"], {
        "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}  # fmt: skip
    assert not is_allowed(careless, calls[0]) and not is_allowed(careless, calls[1])
    table = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/security/cloudtrail_events"
    assert is_allowed(policy, Call("glue:CreateTable", table))


def test_every_object_written_under_the_table_carries_sse_kms_with_the_key(recorded):
    key = recorded["values"]["TABLE_KMS_KEY_ARN"]
    client = recorded["client"]
    writes = [r for r in recorded["pipeline"] if r.bucket == "lake" and r.method in ("PUT", "POST")]
    writes = [r for r in writes if r.key]
    assert writes
    for request in writes:
        assert request.headers.get("x-amz-server-side-encryption") == "aws:kms", request
        assert request.headers.get("x-amz-server-side-encryption-aws-kms-key-id") == key
        assert request.headers.get("x-amz-server-side-encryption-bucket-key-enabled") == "true"
    listed = client.list_objects_v2(Bucket="lake", Prefix="cloudtrail/")["Contents"]
    assert {o["Key"].split("/")[1] for o in listed} == {
        "events",
        "insights",
        "_state",
        "_quarantine",
    }
    for item in listed:
        head = client.head_object(Bucket="lake", Key=item["Key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key), item["Key"]
        assert head["BucketKeyEnabled"] is True


def test_the_reader_bucket_policy_lets_a_query_read_the_table_and_nothing_else(recorded):
    values = recorded["values"]
    policy = load_policy("reader-bucket-policy.json", values)
    calls = [c for c in calls_of_requests(recorded["reader"], REGION) if c.action.startswith("s3:")]
    assert any(c.resource.startswith("arn:aws:s3:::lake/cloudtrail/insights/") for c in calls)
    refused = denied(policy, calls, principal=READER)
    assert refused == [], "\n".join(f"{c.action} {c.resource} ({c.request})" for c in refused)

    for forbidden in (
        Call("s3:GetObject", "arn:aws:s3:::lake/cloudtrail/_quarantine/b.jsonl"),
        Call("s3:GetObject", "arn:aws:s3:::lake/cloudtrail/_state/converted/b.json"),
        Call("s3:ListBucket", "arn:aws:s3:::lake", {"s3:prefix": "cloudtrail/"}),
        Call("s3:PutObject", "arn:aws:s3:::lake/cloudtrail/events/x.parquet"),
    ):
        assert not is_allowed(policy, forbidden, principal=READER), forbidden
    plain_http = replace(calls[0], context={**calls[0].context, "aws:SecureTransport": "false"})
    assert not is_allowed(policy, plain_http, principal=READER)

    # The pipeline's own writes (with the table's key) meet no Deny; a write with another key does.
    writes = [
        c for c in calls_of_requests(recorded["pipeline"], REGION) if c.action == "s3:PutObject"
    ]
    allow_all = {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    opened = {**policy, "Statement": [*policy["Statement"], allow_all]}
    assert all(is_allowed(opened, c, principal="pipeline") for c in writes)
    other_key = {**writes[0].context, "s3:x-amz-server-side-encryption-aws-kms-key-id": "other"}
    assert not is_allowed(opened, replace(writes[0], context=other_key), principal="pipeline")
