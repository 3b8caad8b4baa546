"""Compaction beside ingest, on S3 (moto, over HTTP): leases, failures, kills, listings.

Faults are real storage faults (the proxy of ``tests/fault_proxy.py`` in front of
moto), and the kill is a SIGKILL of a real process frozen on a request: nothing of
the compaction logic is replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from flows.compaction import run_compact
from flows.ingest import run_ingest
from flows.lock import partition_lock
from flows.settings import Settings
from flows.storage import Storage
from flows.swap import UNFINISHED_FOLDER
from tests.corpus import generate_corpus
from tests.fault_proxy import FaultPlan, s3_through_proxy
from tests.helpers import read_table
from transforms.parquet import COMPACTED_PREFIX

ROOT = Path(__file__).resolve().parents[2]
DEST = "s3://lake/t"
PARTITION = "region=us-east-1/year=2024/month=01/day=05"
FAR_FUTURE = date(2100, 1, 1)
FEW_RETRIES = Settings(s3_max_attempts=2)
"""A fault that outlasts the retries does so sooner (the default backs off for a minute)."""


@pytest.fixture(scope="module")
def local_table(tmp_path_factory) -> Path:
    """One busy day of one region in many small files: 2 or 3 files at a 1 MB target."""
    root = tmp_path_factory.mktemp("compact-safety")
    corpus = generate_corpus(root / "logs", seed=11, events=15_000, days=1, regions=("us-east-1",))
    run_ingest(
        str(corpus.root / "AWSLogs"),
        str(root / "lake"),
        settings=Settings(batch_bytes=256 * 1024, lookback_days=0),
    )
    lake: Path = root / "lake"
    return lake


@pytest.fixture
def s3_table(s3, local_table) -> Counter[str]:
    """The table uploaded to moto; the eventIDs it holds (each once)."""
    client = s3.client()
    client.create_bucket(Bucket="lake")
    for file in sorted(local_table.rglob("*.parquet")):
        key = f"t/{file.relative_to(local_table).as_posix()}"
        client.put_object(Bucket="lake", Key=key, Body=file.read_bytes())
    ids = event_ids(s3)
    assert max(ids.values()) == 1
    return ids


def objects(s3, prefix: str) -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket="lake", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def event_ids(s3, table: str = "events") -> Counter[str]:
    """Every eventID a reader listing the table now would see, with how often."""
    client = s3.client()
    seen: Counter[str] = Counter()
    for key in objects(s3, f"t/{table}/"):
        if key.endswith(".parquet"):
            body = client.get_object(Bucket="lake", Key=key)["Body"].read()
            seen.update(pq.read_table(pa_buffer(body), columns=["eventid"]).column(0).to_pylist())
    return seen


def pa_buffer(data: bytes):
    import pyarrow as pa

    return pa.BufferReader(data)


@dataclass(frozen=True)
class FailWrites(FaultPlan):
    """Every attempt of a PUT (or COPY) to a key ending ``suffix`` under ``under`` fails."""

    suffix: str = "-0001.parquet"

    def faults(self, identity: str, operation: str, first: bool) -> list[str]:
        method, path = identity.split(" ", 1)
        path = unquote(path.split("?", 1)[0])
        if method == "PUT" and path.startswith(self.under) and path.endswith(self.suffix):
            return ["internal"] * 1000
        return []


def test_a_compaction_failing_part_way_leaves_every_row_once(s3, s3_table):
    # The second new file can never be put into the partition: the first is in by then.
    plan = FailWrites(under=f"/lake/t/events/{PARTITION}/")
    with s3_through_proxy(s3.url, plan) as proxy:
        summary = run_compact(DEST, before=FAR_FUTURE, target_mb=1, settings=FEW_RETRIES)
    assert any(r.fault for r in proxy.requests), "the fault was injected"
    [problem] = summary.problems
    assert PARTITION in problem["key"]
    assert event_ids(s3) == s3_table  # every row once: what the attempt wrote is gone
    assert not objects(s3, f"t/{UNFINISHED_FOLDER}/")
    assert not [k for k in objects(s3, "t/events/") if COMPACTED_PREFIX in k]

    again = run_compact(DEST, before=FAR_FUTURE, target_mb=1)  # the fault is over
    assert again.problems == [] and again.partitions_compacted == 1
    assert event_ids(s3) == s3_table
    assert all(COMPACTED_PREFIX in k for k in objects(s3, "t/events/"))


def test_a_compaction_failing_while_deleting_is_finished_by_the_next_run(s3, s3_table):
    # DeleteObjects (a POST) of the old files fails past every retry.
    plan = FaultPlan(
        rate=1.0, kinds=("internal",), methods=("POST",), under="/lake", always=True,
        first_of_each=False,
    )  # fmt: skip
    with s3_through_proxy(s3.url, plan):
        summary = run_compact(DEST, before=FAR_FUTURE, target_mb=1, settings=FEW_RETRIES)
    assert len(summary.problems) == 2  # the events partition and the Insights one
    assert all("the next compaction finishes it" in p["reason"] for p in summary.problems)
    assert objects(s3, f"t/{UNFINISHED_FOLDER}/"), "the intent is kept"

    again = run_compact(DEST, before=FAR_FUTURE, target_mb=1)
    assert again.unfinished == {"rolled_forward": 2}
    assert again.problems == []
    assert event_ids(s3) == s3_table
    assert all(COMPACTED_PREFIX in k for k in objects(s3, "t/events/"))
    assert not objects(s3, f"t/{UNFINISHED_FOLDER}/")


@dataclass(frozen=True)
class Freeze(FaultPlan):
    """Hold the first PUT to a key ending ``suffix`` and containing ``within``, unanswered,
    until ``release`` is set; then drop it (it never reaches S3)."""

    within: str = ""
    suffix: str = "-0001.parquet"
    frozen: threading.Event = field(default_factory=threading.Event, compare=False)
    release: threading.Event = field(default_factory=threading.Event, compare=False)

    def faults(self, identity: str, operation: str, first: bool) -> list[str]:
        method, path = identity.split(" ", 1)
        path = unquote(path.split("?", 1)[0])
        if method == "PUT" and self.within in path and path.endswith(self.suffix):
            self.frozen.set()
            self.release.wait(120)
            return ["reset"] * 1000
        return []


COMPACT_IN_A_PROCESS = (
    "import sys; from datetime import date; from flows.compaction import run_compact; "
    "run_compact(sys.argv[1], before=date(2100, 1, 1), target_mb=1)"
)


@pytest.mark.parametrize(
    ("within", "rows_after_kill", "found"),
    [
        (f"/{UNFINISHED_FOLDER}/", "once", "removed"),  # killed while writing its new files
        (f"/t/events/{PARTITION}/", "some twice", "rolled_forward"),  # killed mid-swap
    ],
)
def test_a_killed_compaction_is_cleaned_up_by_the_next_run(
    s3, s3_table, tmp_path, within, rows_after_kill, found
):
    plan = Freeze(within=within)
    with s3_through_proxy(s3.url, plan) as proxy:
        # A 2 s lease, so the next run takes it over soon after the kill; one attempt per
        # request, so no retry budget outlasts it (a PUT is never made under a lease that
        # could expire before its retries end).
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.url,
            "CTPARQUET_LOCK_TTL_SECONDS": "2",
            "CTPARQUET_S3_MAX_ATTEMPTS": "1",
        }
        errors = (tmp_path / "stderr").open("wb")
        run = subprocess.Popen(
            [sys.executable, "-c", COMPACT_IN_A_PROCESS, DEST], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        try:
            assert plan.frozen.wait(300), (tmp_path / "stderr").read_text()[-2000:]
            os.kill(run.pid, signal.SIGKILL)  # no cleanup code runs
            run.wait(30)
        finally:
            plan.release.set()
            if run.poll() is None:
                run.kill()
            errors.close()
    seen = event_ids(s3)
    assert set(seen) == set(s3_table)
    if rows_after_kill == "once":
        assert seen == s3_table  # staged outside the table: no reader saw the new files
    else:
        assert max(seen.values()) == 2  # frozen inside the one window the ADR states
    assert objects(s3, f"t/{UNFINISHED_FOLDER}/"), "the killed run left its attempt"

    time.sleep(2.5)  # the killed run's lease expires
    again = run_compact(DEST, before=FAR_FUTURE, target_mb=1)
    assert again.unfinished == {found: 1}
    assert again.problems == []
    assert event_ids(s3) == s3_table
    assert not objects(s3, f"t/{UNFINISHED_FOLDER}/")
    assert all(COMPACTED_PREFIX in k for k in objects(s3, "t/events/"))


def test_compaction_waits_for_an_ingest_holding_the_lease_then_skips_a_stuck_one(s3, s3_table):
    dest = Storage(DEST)
    before = sorted(objects(s3, "t/events/"))
    with partition_lock(dest, f"events/{PARTITION}", wait=0):  # as an ingest's batch holds it
        summary = run_compact(
            DEST, before=FAR_FUTURE, target_mb=1, settings=Settings(lock_wait_seconds=0.5)
        )
    assert summary.partitions_skipped["busy"] == 1
    assert summary.partitions_busy == [f"{DEST}/events/{PARTITION}"]
    assert summary.partitions_by_table == {"insights": 1}  # its lease was free
    assert summary.problems == []
    assert sorted(objects(s3, "t/events/")) == before  # not a file touched under the lease

    lease = partition_lock(dest, f"events/{PARTITION}", wait=0)
    lease.__enter__()
    threading.Timer(1.0, lease.__exit__, (None, None, None)).start()  # the batch is written
    waited = run_compact(DEST, before=FAR_FUTURE, target_mb=1)
    assert waited.partitions_by_table == {"events": 1} and waited.partitions_busy == []
    assert event_ids(s3) == s3_table


def test_a_scheduled_run_lists_only_the_days_it_may_compact(s3, tmp_path):
    s3.client().create_bucket(Bucket="lake")
    start = date(2024, 1, 5)
    corpus = generate_corpus(tmp_path / "logs", seed=3, events=1500, days=14, start=start)
    run_ingest(str(corpus.root / "AWSLogs"), DEST, settings=Settings(lookback_days=0))
    first = run_compact(DEST, today=start + timedelta(days=12))
    assert first.listed_from == {"events": None, "insights": None}  # no record yet: every day
    assert first.partitions_compacted > 0

    with s3_through_proxy(s3.url) as proxy:
        second = run_compact(DEST, today=start + timedelta(days=13))
    recheck_from = start + timedelta(days=11 - 7)
    assert second.listed_from["events"] == recheck_from.isoformat()
    assert second.partitions_by_table["events"] == 2  # the newly closed day, in 2 regions
    lists = [r for r in proxy.requests if "list-type" in r.query]
    for request in lists:
        prefix = request.query["prefix"][0]
        if prefix.rstrip("/").split("/")[-1].startswith("region="):  # a region's days:
            first_key = request.query["start-after"][0]  # only from the recheck day on
            assert first_key.endswith(f"day={recheck_from:%d}"), first_key
    # Regions found by one delimiter LIST per table, then one LIST per region; the
    # unfinished area; and each compacted partition listed again under its lease.
    per_table = sum(1 + len(regions(s3, table)) for table in ("events", "insights"))
    assert len(lists) == 1 + per_table + second.partitions_compacted
    assert second.requests["list"] == len(lists)
    assert max(event_ids(s3).values()) == 1


def regions(s3, table: str) -> list[str]:
    found = s3.client().list_objects_v2(Bucket="lake", Prefix=f"t/{table}/", Delimiter="/")
    return [p["Prefix"] for p in found.get("CommonPrefixes", [])]


def test_insights_are_compacted_too(tmp_path):
    corpus = generate_corpus(tmp_path / "logs", seed=8, events=2000, days=3, regions=("us-east-1",))
    lake = tmp_path / "lake"
    settings = Settings(batch_bytes=32 * 1024, batch_objects=2, lookback_days=0)
    run_ingest(str(corpus.root / "AWSLogs"), str(lake), settings=settings)
    insights = lake / "insights"
    before_rows = read_table(insights)
    assert before_rows.height > 0, "the corpus holds Insights events"
    assert any(not f.name.startswith(COMPACTED_PREFIX) for f in insights.rglob("*.parquet"))

    summary = run_compact(str(lake), before=FAR_FUTURE)
    assert summary.partitions_by_table["insights"] >= 1
    files = list(insights.rglob("*.parquet"))
    assert files and all(f.name.startswith(COMPACTED_PREFIX) for f in files)
    order = ["region", "year", "month", "day", "eventid"]
    assert read_table(insights).sort(order).equals(before_rows.sort(order))


def test_a_large_file_streams_to_s3_in_parts_under_the_tables_encryption(s3, monkeypatch):
    from flows import storage

    client = s3.client()
    client.create_bucket(Bucket="lake")
    key_arn = s3.client("kms").create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setattr(storage, "UPLOAD_PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    data = os.urandom(12 * 1024 * 1024)
    with s3_through_proxy(s3.url) as proxy:
        dest = Storage(DEST, settings=Settings(sse_kms_key_id=key_arn))
        with dest.streaming_write("lake/t/whole.bin") as sink:
            for start in range(0, len(data), 1024 * 1024):
                sink.write(data[start : start + 1024 * 1024])
            # Parts went out while the file was being written: it is never held whole.
            assert dest.requests()["UploadPart"] == 2
        with pytest.raises(RuntimeError), dest.streaming_write("lake/t/failed.bin") as sink:
            sink.write(data)
            raise RuntimeError("the writer failed")
    assert client.get_object(Bucket="lake", Key="t/whole.bin")["Body"].read() == data
    assert objects(s3, "t/") == ["t/whole.bin"]
    assert not client.list_multipart_uploads(Bucket="lake").get("Uploads"), "aborted"
    assert dest.requests()["CompleteMultipartUpload"] == 1
    started = [r for r in proxy.requests if r.method == "POST" and "uploads" in r.query]
    assert len(started) == 2
    for request in started:
        assert request.headers["x-amz-server-side-encryption"] == "aws:kms"
        assert request.headers["x-amz-server-side-encryption-aws-kms-key-id"] == key_arn
