"""The persisted eventID index: a run's cost does not grow with a partition's files.

Each partition's index (``_state/index/...``) is written after the data file it
covers; a run reads it (one GET) plus only the files it does not cover. These
tests count requests on the moto server, kill a run between its data file and its
index, and check compaction's replacements are adopted without being read.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from flows.compaction import run_compact
from flows.event_index import KnownEventIds
from flows.ingest import run_ingest
from flows.settings import Settings
from flows.storage import Storage
from tests.helpers import read_table
from tests.integration.test_kill import run_until_frozen
from tests.trail import ACCOUNT_A, Trail, assert_exactly_once, at, record

DAY = "2024-03-10"
PARTITION = "region=us-east-1/year=2024/month=03/day=10"
ONE_FILE_PER_OBJECT = Settings(lookback_days=0, batch_objects=1)


def deliver_until(trail: Trail, objects: int) -> None:
    """Objects of one folder, each with events of one day partition (from 01:00 on)."""
    while len(trail.keys) < objects:
        trail.deliver(ACCOUNT_A, "us-east-1", at(DAY, "0100") + timedelta(minutes=len(trail.keys)))


def test_a_scheduled_run_on_a_partition_of_many_files_reads_its_index_not_its_files(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail = Trail(client=client)
    noon = at(DAY, "1200")  # the day is still open: its folder is listed on every run
    gets = {}
    for files in (4, 24):
        deliver_until(trail, files)
        run_ingest(trail.url, "s3://lake/ct/", now=noon, settings=ONE_FILE_PER_OBJECT)
        listed = client.list_objects_v2(Bucket="lake", Prefix=f"ct/events/{PARTITION}/")
        assert listed["KeyCount"] == files
        # A scheduled run: one new object, redelivering an event of the partition's first file.
        again = record(trail.event_ids[0], at(DAY, "0055"), "us-east-1", ACCOUNT_A)
        delivered = at(DAY, "0100") + timedelta(minutes=len(trail.keys))
        trail.deliver(ACCOUNT_A, "us-east-1", delivered, extra_records=[again])
        run = run_ingest(trail.url, "s3://lake/ct/", now=noon, settings=Settings(lookback_days=0))
        assert run.duplicates_dropped == 1
        gets[files] = run.table_requests["GetObject"]
    assert_exactly_once("s3://lake/ct/", trail.event_ids)
    # The same GETs for 4 files as for 24: the day folder's state, the partition's lease
    # (taken over from the last run) and its index; never the eventIDs of each file.
    assert gets == {4: 3, 24: 3}


def deliver_events(trail: Trail, folder_day: str, hhmm: str, ids: list[str]) -> None:
    """An object delivered into ``folder_day``'s folder with events of ``DAY`` (late ones)."""
    records = [record(e, at(DAY, "0500"), "us-east-1", ACCOUNT_A) for e in ids]
    trail.deliver(ACCOUNT_A, "us-east-1", at(folder_day, hhmm), events=0, extra_records=records)


def test_a_run_killed_between_its_data_file_and_its_index_still_deduplicates_on_the_rerun(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CTPARQUET_LOCK_TTL_SECONDS", "2")  # the killed run's lease runs out soon
    trail = Trail(root=tmp_path / "logs", org=None)
    table = tmp_path / "table"
    folder = str(table / "events" / PARTITION)
    deliver_events(trail, DAY, "0600", ["a1", "a2", "a3"])
    run_ingest(trail.url, str(table), lookback_days=0)  # the partition and its index: one file
    # A second object, converted by a run killed just after its data file moved in.
    deliver_events(trail, "2024-03-11", "0100", ["b1", "b2", "b3", "a1"])
    frozen_on = run_until_frozen(
        ["ingest", trail.url, str(table), "--lookback-days", "0"], "mv:1", tmp_path / "marker"
    )
    assert frozen_on.startswith(folder), frozen_on
    assert len(list(Path(folder).glob("*.parquet"))) == 2
    known = KnownEventIds(Storage(str(table)))
    known.refresh(folder)
    assert (known.stats["index_reads"], known.stats["files_read"]) == (1, 1), (
        "the index covers the first file, not the killed run's"
    )

    # A third object redelivers the killed run's events. The rerun converts the second
    # and third objects in one batch (another file name), so only reading the file the
    # index does not cover keeps b1..b3 from being written twice.
    deliver_events(trail, "2024-03-12", "0100", ["b1", "b2", "b3", "c1"])
    rerun = run_ingest(trail.url, str(table), lookback_days=0)
    assert rerun.objects_converted == 2
    expected = ["a1", "a2", "a3", "b1", "b2", "b3", "c1"]
    assert Counter(read_table(table / "events")["eventid"].to_list()) == Counter(expected)


def build_partition(trail: Trail, table: Path, objects: int) -> None:
    deliver_until(trail, objects)
    run_ingest(trail.url, str(table), settings=ONE_FILE_PER_OBJECT)


def test_compacted_files_are_adopted_from_their_footers_without_reading_them(tmp_path):
    trail = Trail(root=tmp_path / "logs", org=None)
    table = tmp_path / "table"
    build_partition(trail, table, 6)
    compacted = run_compact(str(table), before=at("2024-03-12").date())
    assert compacted.files_before == 6
    folder = str(table / "events" / PARTITION)

    known = KnownEventIds(Storage(str(table)))
    known.refresh(folder)
    assert known.stats["files_adopted"] == compacted.files_after
    assert known.stats["files_read"] == 0
    ids = read_table(table / "events")["eventid"]
    assert known.duplicates(folder, "new.parquet", ids).sort().to_list() == sorted(trail.event_ids)

    # A late redelivery into the compacted partition is still dropped, as ingest sees it.
    again = record(trail.event_ids[2], at(DAY, "0059"), "us-east-1", ACCOUNT_A)
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-11", "0900"), extra_records=[again])
    late = run_ingest(trail.url, str(table), lookback_days=0)
    assert late.duplicates_dropped == 1
    assert_exactly_once(str(table), trail.event_ids)


def test_a_compaction_of_a_file_the_index_never_covered_is_read_not_adopted(tmp_path):
    trail = Trail(root=tmp_path / "logs", org=None)
    table = tmp_path / "table"
    build_partition(trail, table, 3)
    # A file the index does not cover (as a writer killed before its index leaves): the
    # same kind of file, converted into another table and moved in beside the others.
    elsewhere = Trail(root=tmp_path / "other", org=None, _serial=100)  # other eventIDs
    elsewhere.deliver(ACCOUNT_A, "us-east-1", at(DAY, "0500"), events=2)
    run_ingest(elsewhere.url, str(tmp_path / "other-table"), lookback_days=0)
    (stray,) = (tmp_path / "other-table" / "events" / PARTITION).glob("*.parquet")
    stray.rename(table / "events" / PARTITION / "part-stray.parquet")
    run_compact(str(table), before=at("2024-03-12").date())

    folder = str(table / "events" / PARTITION)
    known = KnownEventIds(Storage(str(table)))
    known.refresh(folder)
    # The compacted file holds two IDs the index lacks: the footer count shows it.
    assert known.stats["files_adopted"] == 0
    assert known.stats["files_read"] == 1
    everything = [*trail.event_ids, *elsewhere.event_ids]
    ids = read_table(table / "events")["eventid"]
    assert known.duplicates(folder, "new.parquet", ids).sort().to_list() == sorted(everything)
