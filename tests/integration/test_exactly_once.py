"""Every event exactly once: after a rerun, after SIGKILL at several points, with racing runs.

The runs are real processes (``ctparquet ingest``) against the moto server; the
test watches the table's bucket and kills the process when it has written some
of its files, then reruns and checks every eventID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.trail import ACCOUNT_A, ACCOUNT_B, Trail, assert_exactly_once, at, record

LAKE = "s3://lake/ct/"
CLI = [sys.executable, "-m", "flows.cli", "ingest", "s3://trail/", LAKE, "--json"]


@pytest.fixture
def trail(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail = Trail(client=client)
    for account in (ACCOUNT_A, ACCOUNT_B):
        for region in ("us-east-1", "eu-west-1"):
            # Shortly after midnight: events of both days, so two partitions per object.
            for minute in ("0002", "0004", "0300"):
                trail.deliver(account, region, at("2024-03-10", minute), events=4)
    # A redelivery, in a later object, of an event already delivered.
    first = at("2024-03-10", "0002") - timedelta(minutes=5)  # as Trail.deliver dates it
    again = record(trail.event_ids[0], first, "us-east-1", ACCOUNT_A)
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0600"), events=1, extra_records=[again])
    return trail


def run_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CTPARQUET_BATCH_OBJECTS": "1",  # a batch per object: many points to die between
        "CTPARQUET_LOCK_TTL_SECONDS": "2",  # a dead run's partition lock is taken over soon
        "CTPARQUET_S3_MAX_ATTEMPTS": "1",  # no retries: a 2 s lease must cover none (ADR 15)
        "CTPARQUET_LOOKBACK_DAYS": "0",
        **extra,
    }


def lake_keys(client, under: str) -> list[str]:
    found = client.list_objects_v2(Bucket="lake", Prefix=f"ct/{under}")
    return [o["Key"] for o in found.get("Contents", [])]


def kill_when(process: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL ``process`` as soon as ``ready()``; fail if it finished first."""
    deadline = time.monotonic() + 120
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run finished before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never reached {what}")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


LIVE_LEASE_SECONDS = "30"
"""The lease of a run that is not going to be killed: far under the default (300 s), and long
enough that a busy machine cannot make a live run's renewal late (a 2 s lease renewed by a
starved thread was taken over by the run's own other worker; safe, but not the point here)."""


def rerun() -> dict:
    """The same run in this process (the same code as the CLI's, without the start-up).

    Its own leases are long; the killed run's short ones (``run_env``) still expire soon."""
    settings = Settings(
        batch_objects=1,
        lock_ttl_seconds=int(LIVE_LEASE_SECONDS),
        s3_max_attempts=1,
        lookback_days=0,
    )
    return run_ingest("s3://trail/", LAKE, settings=settings).as_json()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "ready"),
    [
        ("the first data file", lambda c: lake_keys(c, "events/")),
        ("the first batch record", lambda c: lake_keys(c, "_state/converted/")),
        ("the first day state", lambda c: lake_keys(c, "_state/days/")),
    ],
)
def test_a_run_killed_mid_way_then_rerun_keeps_every_event_once(trail, point, ready):
    env = run_env()
    process = subprocess.Popen(
        [*CLI, "--no-prefect"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    kill_when(process, lambda: ready(trail.client), point)
    rerun()
    assert_exactly_once(LAKE, trail.event_ids)
    again = rerun()
    assert again["objects_converted"] == 0
    assert again["requests"]["source"]["get"] == 0
    assert_exactly_once(LAKE, trail.event_ids)


@pytest.mark.slow
def test_two_racing_runs_keep_every_event_once(trail):
    env = run_env(CTPARQUET_LOCK_TTL_SECONDS=LIVE_LEASE_SECONDS)  # racing, neither is killed
    runs = [
        subprocess.Popen(
            [*CLI, "--no-prefect"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for process in runs:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert_exactly_once(LAKE, trail.event_ids)
    assert all(r["problems"] == [] for r in results)
    after = rerun()
    assert after["objects_converted"] == 0


@pytest.mark.slow
def test_the_prefect_flow_killed_mid_way_then_rerun_keeps_every_event_once(prefect_harness, trail):
    from prefect.settings import PREFECT_API_URL

    from flows.ingest import ingest

    # The subprocess reports to the harness's API server: no server start of its own.
    env = run_env(PREFECT_API_URL=str(PREFECT_API_URL.value()))
    process = subprocess.Popen([*CLI], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(process, lambda: len(lake_keys(trail.client, "events/")) >= 3, "three data files")
    summary = ingest("s3://trail/", LAKE, lookback_days=0)
    assert summary["objects_converted"] > 0
    assert_exactly_once(LAKE, trail.event_ids)


def test_worker_threads_write_every_event_once_and_their_requests_are_counted(trail):
    # Each worker commits its own batches under the partitions' leases, with its own index.
    settings = Settings(batch_objects=2, lookback_days=0, workers=2)
    summary = run_ingest("s3://trail/", LAKE, settings=settings)
    assert_exactly_once(LAKE, trail.event_ids)
    assert summary.duplicates_dropped == 1
    # The data, batch and state PUTs happen in the workers; the summary still counts them.
    assert summary.table_requests["PutObject"] >= summary.files_written + len(summary.partitions)
    # So are the workers' reads of the log objects: one GET each.
    assert summary.source_requests["GetObject"] == summary.objects_converted == 13


def test_a_partition_another_writer_holds_is_written_after_the_free_ones(tmp_path):
    import threading

    from flows.lock import partition_lock
    from flows.storage import Storage

    trail = Trail(root=tmp_path / "logs")
    # Events at 23:55 and 00:05: one object, two day partitions.
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0010"), events=3)
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0001"), events=3)
    table = tmp_path / "table"
    busy_partition = "region=us-east-1/year=2024/month=03/day=09"
    busy_folder = table / "events" / busy_partition
    free_folder = table / "events" / busy_partition.replace("day=09", "day=10")
    held = threading.Event()
    seen_at_release: dict[str, bool] = {}

    def other_writer() -> None:
        # Holds the busy partition until the free one is written (or 60 s pass): a run
        # that waited for the busy partition first would never write the free one.
        with partition_lock(Storage(str(table)), "events/" + busy_partition):
            held.set()
            deadline = time.monotonic() + 60
            while not list(free_folder.glob("*.parquet")) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_at_release["free"] = bool(list(free_folder.glob("*.parquet")))
            seen_at_release["busy"] = bool(list(busy_folder.glob("*.parquet")))

    writer = threading.Thread(target=other_writer)
    writer.start()
    held.wait(5)
    run_ingest(str(trail.root), str(table), settings=Settings(lookback_days=0))
    writer.join()
    assert_exactly_once(str(table), trail.event_ids)
    # The free partition was written while the other writer held the busy one; the busy
    # one only after its lease came free.
    assert seen_at_release == {"free": True, "busy": False}
    assert list(busy_folder.glob("*.parquet"))
