"""S3 faults injected by a proxy in front of moto: retried, and nothing lost either way.

Throttling (503 SlowDown), 500/503 errors, responses lost after the request took
effect and connections reset are injected on every kind of request (LIST, GET,
HEAD, PUT, COPY, DELETE). With the retry policy of ``flows/aws.py`` the run ends
as if nothing had happened; with faults that outlast it, nothing is lost either:
what was not done is not marked done, and the next run does it.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from urllib.parse import urlsplit

import boto3
import pytest
from click.testing import CliRunner

from flows.cli import EXIT_FAILED, app
from flows.ingest import run_ingest
from flows.query import run_query
from flows.redriving import run_redrive
from flows.settings import Settings
from tests.fault_proxy import FAULT_KINDS, FaultPlan, s3_through_proxy
from tests.hostile import (
    HostileCorpus,
    build_hostile_corpus,
    expected_places,
    problem_places,
    upload_corpus,
)
from tests.s3_server import REGION

SOURCE, DEST = "s3://trail/AWSLogs/", "s3://lake/cloudtrail/"


@pytest.fixture
def corpus(s3, tmp_path) -> HostileCorpus:
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    corpus = build_hostile_corpus(tmp_path / "trail")
    upload_corpus(client, "trail", corpus)
    return corpus


def table_event_ids() -> Counter[str]:
    rows = run_query(DEST, "SELECT eventid FROM cloudtrail_logs").table.column("eventid")
    return Counter(rows.to_pylist())


def test_throttling_and_5xx_are_retried_and_nothing_is_lost(s3, corpus):
    with s3_through_proxy(s3.url, FaultPlan()) as proxy:
        summary = run_ingest(SOURCE, DEST, lookback_days=0)
        redriven = run_redrive(DEST)

    assert table_event_ids() == Counter(corpus.good)
    problems = [p.as_dict() for p in summary.problems]
    assert problem_places(problems) == expected_places(corpus), "faults became no new problems"
    assert redriven.outcome.still_quarantined == summary.objects_quarantined
    # The faults were real, of every kind, on every kind of request.
    faulted = proxy.faults_injected
    assert {r.fault for r in faulted} == set(FAULT_KINDS)
    # Writes are single PUTs on S3 (no staging copy): no POST, and no DELETE is made.
    assert {r.method for r in faulted} == {"GET", "HEAD", "PUT"}
    assert any("list-type" in r.query for r in faulted), "a LIST was faulted"
    assert any(r.bucket == "trail" and r.key and r.method == "GET" for r in faulted)


def test_reads_that_fail_past_the_retries_are_tried_again_by_the_next_run(s3, corpus):
    no_retries = Settings(s3_max_attempts=1, s3_retry_mode="standard")
    plan = FaultPlan(
        rate=0.5,
        kinds=("internal",),
        methods=("GET",),
        under="/trail/AWSLogs/",
        always=True,
        first_of_each=False,
    )
    with s3_through_proxy(s3.url, plan):
        first = run_ingest(SOURCE, DEST, settings=no_retries, lookback_days=0)
    unread = [p for p in first.problems if p.reason.startswith("could not read object")]
    assert unread, "some reads failed for good"

    second = run_ingest(SOURCE, DEST, lookback_days=0)
    retried = second.objects_seen - second.objects_skipped.total()
    assert retried == len(unread), "exactly the objects not read are read again"
    assert table_event_ids() == Counter(corpus.good)
    assert problem_places([p.as_dict() for p in first.problems + second.problems]) == (
        expected_places(corpus) + problem_places([p.as_dict() for p in unread])
    )  # The stray key is reported once: its day folder's state remembers it as handled.


def test_a_write_that_fails_past_the_retries_fails_the_run_and_the_rerun_completes(
    every_delivery_day, s3, corpus, monkeypatch
):
    monkeypatch.setenv("CTPARQUET_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("CTPARQUET_S3_RETRY_MODE", "standard")
    monkeypatch.setenv("CTPARQUET_BATCH_OBJECTS", "3")
    plan = FaultPlan(
        rate=0.3, kinds=("internal",), methods=("PUT",), always=True, first_of_each=False, seed="w"
    )
    with s3_through_proxy(s3.url, plan) as proxy:
        failed = CliRunner().invoke(app, ["ingest", SOURCE, DEST, "--json", "--no-prefect"])
    assert failed.exit_code == EXIT_FAILED, failed.output
    assert "internal error" in json.loads(failed.stdout.strip().splitlines()[-1])["error"]
    assert proxy.faults_injected

    monkeypatch.delenv("CTPARQUET_S3_MAX_ATTEMPTS")
    rerun = run_ingest(SOURCE, DEST, lookback_days=0)
    assert rerun.objects_converted > 0
    assert table_event_ids() == Counter(corpus.good)


def test_a_put_whose_body_stops_short_never_reaches_s3(s3):
    """As on S3: a client killed while sending a PUT leaves no object, not the part it sent
    (stored, that part would carry the whole body's checksum, and every GET of it fail)."""
    s3.client().create_bucket(Bucket="lake")
    with s3_through_proxy(s3.url) as proxy:
        address = urlsplit(proxy.url)
        with socket.create_connection((address.hostname, address.port)) as sending:
            sending.sendall(
                b"PUT /lake/t/cut.json HTTP/1.1\r\nHost: lake\r\nContent-Length: 100\r\n\r\n"
                b'{"owner": '  # 10 of the 100 bytes, then the client is gone
            )
            sending.shutdown(socket.SHUT_WR)
            sending.recv(65536)  # returns once the proxy is done with the request
        through_proxy = boto3.client("s3", endpoint_url=proxy.url, region_name=REGION)
        through_proxy.put_object(Bucket="lake", Key="t/whole.json", Body=b'{"owner": "x"}')
    listed = s3.client().list_objects_v2(Bucket="lake").get("Contents", [])
    assert [o["Key"] for o in listed] == ["t/whole.json"]  # a whole PUT goes through
    assert [r.key for r in proxy.requests if r.method == "PUT"] == ["t/whole.json"]
