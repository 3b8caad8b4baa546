"""The flows never log event contents or credentials: every record they emit is searched.

The Prefect flows (ingest, then redrive) run for real on S3 (moto) over the
hostile corpus, whose payloads, identities and broken records all carry canary
strings, with canary AWS credentials in the environment. Every log record is
captured with caplog (the project's loggers at DEBUG, everything else at INFO,
Prefect's run loggers included) with the CLI's human output, and searched for the canaries.
"""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from flows.cli import app
from tests.hostile import CANARY, SECRET_CANARY, build_hostile_corpus, upload_corpus

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/CANARYSECRETACCESSKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjECANARYSESSIONTOKEN"
ACCESS_KEY = "AKIACANARYACCESSKEYID"
NEVER_LOGGED = (CANARY, SECRET_CANARY, SECRET_KEY, SESSION_TOKEN, "payroll", "198.51.100.7")


@pytest.fixture
def prefect_logging(prefect_harness) -> None:
    """Let Prefect configure logging (it does so lazily, replacing root handlers) before caplog."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()


def logged_text(records: list[logging.LogRecord]) -> str:
    lines = []
    for record in records:
        lines.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(repr(record.exc_info[1]))
    return "\n".join(lines)


def test_flows_and_cli_log_no_event_contents_and_no_credentials(
    every_delivery_day, prefect_logging, s3, tmp_path, monkeypatch, caplog
):
    from flows.ingest import ingest
    from flows.redrive import redrive

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flows")
    caplog.set_level(logging.DEBUG, logger="transforms")

    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    corpus = build_hostile_corpus(tmp_path / "trail")
    upload_corpus(client, "trail", corpus)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)

    summary = ingest("s3://trail/AWSLogs/", "s3://lake/cloudtrail/")
    redriven = redrive("s3://lake/cloudtrail/")
    cli = CliRunner().invoke(
        app, ["ingest", "s3://trail/AWSLogs/", "s3://lake/again/", "--no-prefect"]
    )

    assert summary["events_written"] == len(corpus.good)
    assert redriven["still_quarantined"] == summary["objects_quarantined"] > 0
    logged = logged_text(caplog.records)
    # The capture works: the flows' own run-log lines and the problems' keys are there.
    assert f"converted {summary['objects_converted']} objects" in logged
    assert "re-drove" in logged
    assert "not-gzip.json.gz: not valid JSON" in cli.stdout
    for canary in NEVER_LOGGED:
        assert canary not in logged, f"{canary!r} leaked into the logs"
        assert canary not in cli.stdout + cli.stderr, f"{canary!r} leaked into the CLI output"
