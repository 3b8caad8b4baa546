"""Discovery from anywhere in the layout by delimiter listings; refusals name the permission."""

from __future__ import annotations

import json
import urllib.request

import pytest

from flows.aws import AccessDeniedError
from flows.ingest import run_ingest
from flows.listing import SourceLayoutError, discover
from flows.settings import Settings
from flows.storage import Storage
from tests.trail import ACCOUNT_A, ACCOUNT_B, ORG, Trail, at


@pytest.fixture
def trail(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    trail = Trail(client=client, prefix="custom/prefix/")
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10"))
    trail.deliver(ACCOUNT_A, "eu-west-1", at("2024-03-10"))
    trail.deliver(ACCOUNT_B, "us-east-1", at("2024-03-09"))
    Trail(client=client, prefix="custom/prefix/", org=None).deliver(
        ACCOUNT_B, "ap-south-1", at("2024-03-10")
    )  # the same bucket also gets a non-organisation trail
    client.put_object(Bucket="trail", Key="custom/prefix/AWSLogs/README.txt", Body=b"x")
    client.put_object(
        Bucket="trail",
        Key=f"custom/prefix/AWSLogs/{ORG}/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/x.json.gz",
        Body=b"x",
    )
    return trail


EVERYTHING = {
    (ORG, ACCOUNT_A, "us-east-1"),
    (ORG, ACCOUNT_A, "eu-west-1"),
    (ORG, ACCOUNT_B, "us-east-1"),
    (None, ACCOUNT_B, "ap-south-1"),
}


@pytest.mark.parametrize(
    ("below", "expected", "date_prefix"),
    [
        ("", EVERYTHING, ()),
        ("custom/", EVERYTHING, ()),
        ("custom/prefix/AWSLogs/", EVERYTHING, ()),
        (f"custom/prefix/AWSLogs/{ORG}/", EVERYTHING - {(None, ACCOUNT_B, "ap-south-1")}, ()),
        (
            f"custom/prefix/AWSLogs/{ORG}/{ACCOUNT_A}/",
            {(ORG, ACCOUNT_A, "us-east-1"), (ORG, ACCOUNT_A, "eu-west-1")},
            (),
        ),
        (f"custom/prefix/AWSLogs/{ACCOUNT_B}/CloudTrail/", {(None, ACCOUNT_B, "ap-south-1")}, ()),
        (
            f"custom/prefix/AWSLogs/{ORG}/{ACCOUNT_A}/CloudTrail/eu-west-1/2024/03/",
            {(ORG, ACCOUNT_A, "eu-west-1")},
            (2024, 3),
        ),
    ],
)
def test_discovery_from_any_level(trail, below, expected, date_prefix):
    found = discover(Storage(f"s3://trail/{below}"))
    assert {(t.org_id, t.account, t.region) for t in found.trails} == expected
    assert found.date_prefix == date_prefix
    assert all(t.kind == "CloudTrail" for t in found.trails)


def test_discovery_narrowed_to_accounts_and_regions_lists_less(trail):
    everything = Storage("s3://trail/")
    discover(everything)
    narrowed = Storage("s3://trail/")
    found = discover(narrowed, accounts=[ACCOUNT_A], regions=["eu-west-1"])
    assert [(t.account, t.region) for t in found.trails] == [(ACCOUNT_A, "eu-west-1")]
    assert narrowed.requests()["ListObjectsV2"] < everything.requests()["ListObjectsV2"]


def test_a_source_without_awslogs_is_refused_by_name(s3):
    s3.client().create_bucket(Bucket="other")
    s3.client().put_object(Bucket="other", Key="a/b/c/d/e.json.gz", Body=b"x")
    with pytest.raises(SourceLayoutError, match="no AWSLogs/ folder within 3 levels"):
        discover(Storage("s3://other/"))


def _moto_auth(s3, count: str) -> None:
    request = urllib.request.Request(
        f"{s3.url}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).read()


def test_a_missing_permission_names_bucket_key_and_action(trail, s3, monkeypatch):
    iam = s3.client("iam")
    iam.create_user(UserName="reader")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="reader", PolicyName="list", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    trail.client.create_bucket(Bucket="lake")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    _moto_auth(s3, "0")  # moto checks IAM from now on
    try:
        with pytest.raises(AccessDeniedError) as refused:
            run_ingest(
                "s3://trail/custom/prefix/AWSLogs/",
                "s3://lake/ct/",
                lookback_days=2,
                now=at("2024-03-10"),
                settings=Settings(),
            )
    finally:
        _moto_auth(s3, "inf")
    message = str(refused.value)
    assert "s3:GetObject" in message
    assert "bucket 'lake'" in message  # reading the table's state is the first GET
    assert "_state/days/trail/custom/prefix/AWSLogs/" in message


def test_credentials_from_a_prefect_aws_block_replace_the_default_chain(prefect_harness, trail, s3):
    from prefect_aws import AwsCredentials

    iam = s3.client("iam")
    iam.create_user(UserName="pipeline")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="pipeline", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="pipeline")["AccessKey"]
    AwsCredentials(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    ).save("ctparquet-test", overwrite=True)
    trail.client.create_bucket(Bucket="lake")
    source = "s3://trail/custom/prefix/AWSLogs/"
    _moto_auth(s3, "0")  # from now on the environment's keys ("testing") are refused
    try:
        with pytest.raises(AccessDeniedError):
            run_ingest(source, "s3://lake/ct/", now=at("2024-03-10"), settings=Settings())
        summary = run_ingest(
            source,
            "s3://lake/ct/",
            now=at("2024-03-10"),
            settings=Settings(aws_credentials_block="ctparquet-test"),
        )
    finally:
        _moto_auth(s3, "inf")
    assert summary.objects_converted == 4


@pytest.mark.parametrize("mode", ["adaptive", "standard"])
def test_one_retry_policy_for_s3fs_and_boto3(s3, mode):
    from flows.aws import boto3_client

    settings = Settings(s3_retry_mode=mode, s3_max_attempts=7)
    storage = Storage("s3://trail/", settings=settings)
    expected = {"mode": mode, "total_max_attempts": 7}
    assert storage.fs.s3.meta.config.retries == expected
    assert boto3_client("s3", settings).meta.config.retries == expected
    assert storage.fs.retries == 1  # no second retry loop in s3fs
