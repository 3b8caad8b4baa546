"""``--profile`` and ``--region`` reach every AWS client: s3fs (aiobotocore) and boto3 alike.

Each request's signature names the access key and the region that signed it
(``Credential=KEY/DATE/REGION/SERVICE/aws4_request``), so the tests read them
from the requests sent to the moto server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.aws import RequestCounter, boto3_client, s3fs_options
from flows.settings import Settings
from tests.trail import ACCOUNT_A, Trail, at

PROFILE_KEY = "AKIAPROFILEAUDIT0001"
ENV_KEY = "testing"  # what tests/s3_server.py puts in the environment
SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@pytest.fixture
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A profile ``audit`` in temporary AWS config files: its own key and region."""
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text("[profile audit]\nregion = eu-west-3\n")
    credentials.write_text(
        f"[audit]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return "audit"


def signed_by(request: Any) -> tuple[str, str, str]:
    """(access key, region, service) of a signed request."""
    header = request.headers["Authorization"]
    found = SCOPE.search(header.decode() if isinstance(header, bytes) else header)
    assert found, header
    return found.group(1), found.group(2), found.group(3)


def s3fs_signatures(settings: Settings, bucket: str) -> list[tuple[str, str, str]]:
    import s3fs

    seen: list[tuple[str, str, str]] = []
    options = s3fs_options(settings, RequestCounter())
    options["session"].register(
        "before-send.s3", lambda request, **_: seen.append(signed_by(request))
    )
    s3fs.S3FileSystem(**options).ls(bucket)
    return seen


def boto3_signatures(settings: Settings) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    glue = boto3_client("glue", settings)
    glue.meta.events.register("before-send", lambda request, **_: seen.append(signed_by(request)))
    glue.get_databases()
    return seen


def test_profile_and_region_reach_s3fs_and_boto3(s3, aws_profile):
    s3.client().create_bucket(Bucket="trail")
    chosen = Settings(aws_profile=aws_profile, aws_region="eu-central-1")
    assert set(s3fs_signatures(chosen, "trail")) == {(PROFILE_KEY, "eu-central-1", "s3")}
    assert set(boto3_signatures(chosen)) == {(PROFILE_KEY, "eu-central-1", "glue")}


def test_the_profile_gives_its_own_region_and_wins_over_keys_in_the_environment(
    s3, aws_profile, monkeypatch
):
    s3.client().create_bucket(Bucket="trail")
    assert os.environ["AWS_ACCESS_KEY_ID"] == ENV_KEY
    # A region in the environment would win over the profile's (as for the AWS CLI).
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    chosen = Settings(aws_profile=aws_profile)
    assert set(s3fs_signatures(chosen, "trail")) == {(PROFILE_KEY, "eu-west-3", "s3")}
    assert set(boto3_signatures(chosen)) == {(PROFILE_KEY, "eu-west-3", "glue")}
    # Nothing chosen: the default chain, as before (the environment's key).
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert set(boto3_signatures(Settings())) == {(ENV_KEY, "us-east-1", "glue")}


def test_the_cli_passes_profile_and_region_to_the_run(s3, aws_profile, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    Trail(client=client).deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0010"), events=2)
    args = ["ingest", "s3://trail/", "s3://lake/t/", "--lookback-days", "0", "--no-prefect"]
    args += ["--profile", aws_profile, "--region", "eu-central-1", "--json"]
    # A fresh process (the CLI sets the settings' environment), every S3 signature recorded.
    program = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "import flows.storage\n"
        "from flows.cli import app\n"
        "from tests.integration.test_aws_profile import signed_by\n"
        "seen = set()\n"
        "original = flows.storage.s3fs_options\n"
        "def recording(settings, counter):\n"
        "    options = original(settings, counter)\n"
        "    options['session'].register(\n"
        "        'before-send.s3', lambda request, **_: seen.add(signed_by(request)))\n"
        "    return options\n"
        "flows.storage.s3fs_options = recording\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "sys.stdout.write(result.stdout)\n"
        "print(json.dumps(sorted(seen)))\n"
        "sys.exit(result.exit_code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    *_, summary, seen = done.stdout.strip().splitlines()
    assert json.loads(summary)["events_written"] == 2
    assert {tuple(s) for s in json.loads(seen)} == {(PROFILE_KEY, "eu-central-1", "s3")}


def test_an_unknown_profile_fails_the_run_naming_it(s3, aws_profile, tmp_path):
    s3.client().create_bucket(Bucket="trail")
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ddl", "s3://trail/", "--profile", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "nope" in done.stderr and "could not be found" in done.stderr, done.stderr
