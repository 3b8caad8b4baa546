"""Every writer under the partition lease, and no PUT under a lease that may expire first.

Redrive takes the partition lease as ingest does; backfill runs its units on
worker threads that share one eventID index per partition across batches;
a lease too short for the S3 retries of a PUT is refused before any PUT is made.
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from datetime import date

import pytest

from flows.backfilling import plan_units, run_backfill
from flows.ingest import run_ingest
from flows.lock import LeaseTooShortError, LockTimeoutError, partition_lock
from flows.redriving import run_redrive
from flows.settings import Settings
from flows.storage import Storage
from flows.workers import run_unit, table_of
from tests.helpers import read_table
from tests.hostile import build_hostile_corpus, encoded, event
from tests.trail import ACCOUNT_A, Trail, assert_exactly_once, at, record

NOW = at("2024-03-20")
PARTITION = "events/region=us-east-1/year=2024/month=03/day=10"


def test_a_redrive_honours_a_partition_lease_another_writer_holds(tmp_path):
    corpus = build_hostile_corpus(tmp_path / "trail")
    dest = tmp_path / "lake"
    run_ingest(str(corpus.root), str(dest), lookback_days=0)
    fixed = corpus.objects["records-not-list"]  # re-uploaded whole, the same size
    body = gzip.compress(encoded([event("fixed1"), event("fixed2")]))
    fixed.write_bytes(body + b"\0" * (fixed.stat().st_size - len(body)))
    partition = "region=us-east-1/year=2024/month=01/day=05"
    folder = dest / "events" / partition
    files_before = set(folder.glob("*.parquet"))
    quarantine_before = sorted(p.read_text() for p in (dest / "_quarantine").glob("*.jsonl"))

    # Another writer (an ingest, a compaction) holds the partition for the whole re-drive.
    released = threading.Event()
    taken = threading.Event()

    def other_writer() -> None:
        with partition_lock(Storage(str(dest)), f"events/{partition}"):
            taken.set()
            released.wait(30)

    writer = threading.Thread(target=other_writer)
    writer.start()
    taken.wait(5)
    try:
        with pytest.raises(LockTimeoutError, match="lock held by"):
            run_redrive(str(dest), settings=Settings(lock_wait_seconds=0.5))
    finally:
        released.set()
        writer.join()
    assert set(folder.glob("*.parquet")) == files_before, "nothing written under its lease"
    assert sorted(p.read_text() for p in (dest / "_quarantine").glob("*.jsonl")) == (
        quarantine_before
    )

    rerun = run_redrive(str(dest))  # the lease is free now
    assert rerun.outcome.objects_cleared == 1
    expected = Counter([*corpus.good, "fixed1", "fixed2"])
    assert Counter(read_table(dest / "events")["eventid"].to_list()) == expected


def test_a_lease_too_short_for_the_retries_of_a_put_makes_no_put(s3):
    client = s3.client()
    client.create_bucket(Bucket="lake")
    # 10 attempts may sleep 111 s; a 120 s lease leaves 30 s of margin: not enough.
    dest = Storage("s3://lake/ct/", settings=Settings(lock_ttl_seconds=120, s3_max_attempts=10))
    lock = partition_lock(dest, PARTITION)
    with pytest.raises(LeaseTooShortError, match="CTPARQUET_LOCK_TTL_SECONDS above 148"), lock:
        pass
    assert dest.requests()["PutObject"] == 0
    assert "Contents" not in client.list_objects_v2(Bucket="lake")
    # The default lease (300 s) covers the default retries.
    with partition_lock(Storage("s3://lake/ct/"), PARTITION) as lease:
        lease.keep()


def trail_of_two_days(trail: Trail) -> None:
    for region in ("us-east-1", "eu-west-1"):
        for day in ("2024-03-01", "2024-03-02"):
            # Just after midnight: events of the day before too, so units share partitions.
            trail.deliver(ACCOUNT_A, region, at(day, "0003"), events=3)
            trail.deliver(ACCOUNT_A, region, at(day, "1400"), events=2)


def test_backfill_runs_its_units_on_worker_threads_and_converts_each_event_once(
    tmp_path, monkeypatch
):
    import flows.backfilling

    trail = Trail(root=tmp_path / "logs")
    trail_of_two_days(trail)
    # The day-2 unit redelivers an event of day 1's afternoon (a partition both units write).
    first_afternoon = trail.event_ids[3]
    again = record(first_afternoon, at("2024-03-01", "1355"), "us-east-1", ACCOUNT_A)
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-02", "1500"), events=1, extra_records=[again])
    table = tmp_path / "table"
    ran_on: list[str] = []

    def watched(*args):
        ran_on.append(threading.current_thread().name)
        return run_unit(*args)

    monkeypatch.setattr(flows.backfilling, "run_unit", watched)
    summary = run_backfill(
        trail.url, str(table), date(2024, 3, 1), date(2024, 3, 2),
        now=NOW, settings=Settings(backfill_concurrency=2),
    )  # fmt: skip
    assert (summary.units, summary.duplicates_dropped) == (4, 1)
    assert_exactly_once(str(table), trail.event_ids)
    # Every unit ran on a worker thread, not the caller's.
    assert len(ran_on) == 4
    assert all(name.startswith("unit") for name in ran_on)


def test_a_backfill_unit_reads_a_partitions_index_once_across_its_batches(tmp_path):
    trail = Trail(root=tmp_path / "logs")
    for minute in range(8):  # one folder, one partition, eight batches of one object
        trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-01", f"10{minute:02d}"), events=2)
    table = str(tmp_path / "table")
    settings = Settings(batch_objects=1)
    (unit,) = plan_units(Storage(trail.url), date(2024, 3, 1), date(2024, 3, 1))
    summary = run_unit(trail.url, table, unit, settings, NOW)
    assert summary.files_written == 8
    _, known = table_of(table, settings)
    # The first batch looked for the index (none yet); the next seven used this process's.
    assert known.stats["index_reads"] == 1
    assert known.stats["index_writes"] == 8
    assert_exactly_once(table, trail.event_ids)
