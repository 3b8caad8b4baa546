"""A prefect-aws credentials block is the identity of every AWS call: S3, Glue and Athena,
with the run's retry policy; a role it assumes is refreshed before it expires; the block is
loaded once per process, however many storages and clients a run opens."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from flows import register
from flows.aws import boto3_client, forget_credentials, role_credentials
from flows.register import register_table
from flows.settings import Settings
from flows.storage import Storage
from tests.fault_proxy import s3_through_proxy

ACCOUNT = "123456789012"


def moto_auth(s3, count: str) -> None:
    """From now on moto checks IAM ("0"), or not ("inf")."""
    request = urllib.request.Request(
        f"{s3.url}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).read()


@pytest.fixture
def fresh_block_cache():
    forget_credentials()
    yield
    forget_credentials()


def access_key_of(request) -> str:
    found = re.search(r"Credential=([^/]+)/", request.headers.get("authorization", ""))
    assert found, request
    return found[1]


def test_glue_registration_runs_as_the_block_with_the_retry_policy(
    prefect_harness, s3, monkeypatch, fresh_block_cache
):
    from prefect_aws import AwsCredentials

    iam = s3.client("iam")
    iam.create_user(UserName="pipeline")
    grant = {"Effect": "Allow", "Action": ["s3:*", "glue:*"], "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [grant]}
    iam.put_user_policy(UserName="pipeline", PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="pipeline")["AccessKey"]
    AwsCredentials(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    ).save("ctparquet-review-glue", overwrite=True)
    s3.client().create_bucket(Bucket="lake")
    monkeypatch.setenv("CTPARQUET_AWS_CREDENTIALS_BLOCK", "ctparquet-review-glue")
    monkeypatch.setenv("CTPARQUET_S3_RETRY_MODE", "adaptive")
    monkeypatch.setenv("CTPARQUET_S3_MAX_ATTEMPTS", "4")

    retries = {"mode": "adaptive", "total_max_attempts": 4}
    assert register._glue_client().meta.config.retries == retries
    assert register.AthenaDDL("primary").client.meta.config.retries == retries
    with s3_through_proxy(s3.url) as proxy:
        moto_auth(s3, "0")  # the environment's keys ("testing") are refused from now on
        try:
            done = register_table("s3://lake/ct", database="security", table="t", this_year=2026)
        finally:
            moto_auth(s3, "inf")
    assert done.action == "created"
    glue = [r for r in proxy.requests if r.headers.get("x-amz-target", "").startswith("AWSGlue")]
    assert glue and {access_key_of(r) for r in glue} == {key["AccessKeyId"]}


def test_a_role_the_block_assumes_is_refreshed_and_the_block_loaded_once(
    prefect_harness, s3, monkeypatch, fresh_block_cache
):
    from prefect_aws import AwsCredentials
    from prefect_aws.assume_role_parameters import AssumeRoleParameters
    from pydantic import SecretStr

    iam = s3.client("iam")
    anyone_here = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assume = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": anyone_here}
    trust = {"Version": "2012-10-17", "Statement": [assume]}
    role = iam.create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(trust))
    s3.client().create_bucket(Bucket="lake")

    def block(name: str, seconds: int) -> Settings:
        AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key=SecretStr("testing"),
            assume_role_arn=role["Role"]["Arn"],
            assume_role_kwargs=AssumeRoleParameters(
                RoleSessionName="ctparquet", DurationSeconds=seconds
            ),
        ).save(name, overwrite=True)
        return Settings(aws_credentials_block=name)

    long_lived, short_lived = block("ctparquet-review-1h", 3600), block("ctparquet-review-15m", 900)
    loads: list[str] = []
    load = AwsCredentials.load

    def counted(name, *args, **kwargs):
        loads.append(name)
        return load(name, *args, **kwargs)

    monkeypatch.setattr(AwsCredentials, "load", counted)

    # An hour's credentials are kept; 15 minutes' are inside botocore's refresh window, so
    # each use refreshes them: what a long backfill sees as its role nears expiry.
    hour = role_credentials(long_lived)
    assert hour.get_frozen_credentials().access_key == hour.get_frozen_credentials().access_key
    quarter = role_credentials(short_lived)
    first = quarter.get_frozen_credentials().access_key
    assert quarter.get_frozen_credentials().access_key != first
    assert first.startswith("ASIA")

    with s3_through_proxy(s3.url) as proxy:
        for _ in range(3):  # as each batch of a run, and each worker, opens its own
            Storage("s3://lake/", settings=short_lived).list_dir("lake")
        boto3_client("glue", short_lived).get_databases()
    assert loads == ["ctparquet-review-1h", "ctparquet-review-15m"]  # once each
    signed = [
        r
        for r in proxy.requests
        if "/sts/aws4_request" not in r.headers.get("authorization", "/sts/aws4_request")
    ]
    assert {r.bucket for r in signed if not r.headers.get("x-amz-target")} == {"lake"}
    used = {access_key_of(r) for r in signed}
    assert "testing" not in used and all(k.startswith("ASIA") for k in used)
    assert len(used) > 1  # refreshed between requests, by s3fs and boto3 alike
