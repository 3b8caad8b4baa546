"""End to end on a seeded realistic corpus: every event once, in its event-time partition,
every column as the raw table shows it, nothing lost — also across many small batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.corpus import Corpus, generate_corpus
from tests.helpers import assert_row_preserves, read_table

PAYLOADS = {
    "requestparameters": "requestParameters",
    "responseelements": "responseElements",
    "additionaleventdata": "additionalEventData",
    "serviceeventdetails": "serviceEventDetails",
    "edgedevicedetails": "edgeDeviceDetails",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return generate_corpus(tmp_path_factory.mktemp("logs"), seed=20241125, events=3000, days=3)


@pytest.fixture(scope="module")
def converted(corpus, tmp_path_factory):
    dest = tmp_path_factory.mktemp("lake")
    # Small batches: duplicate deliveries land in different batches and meet in the table.
    settings = Settings(batch_bytes=64 * 1024, batch_objects=7)
    summary = run_ingest(
        str(corpus.root / "AWSLogs"), str(dest), settings=settings, lookback_days=0
    )
    return summary, dest


def test_every_event_lands_exactly_once(corpus, converted):
    summary, dest = converted
    table = read_table(Path(dest) / "events")
    assert sorted(table["eventid"]) == sorted(corpus.events)
    assert summary.events_written == len(corpus.events)
    # The generator writes one Insights event per CloudTrail-Insight object.
    assert summary.events_read == corpus.total_records + len(corpus.insight_objects)
    assert summary.insight_events_written == len(corpus.insight_objects) > 0
    assert summary.duplicates_dropped == corpus.total_records - len(corpus.events)
    assert summary.problems == []
    assert summary.objects_converted == len(corpus.event_objects) + len(corpus.insight_objects)
    # Digest folders hold no events: they are never listed (no request spent on them).
    assert "digest" not in summary.objects_skipped
    assert summary.objects_seen == len(corpus.event_objects) + len(corpus.insight_objects)


def test_every_event_is_in_its_event_time_partition(corpus, converted):
    _, dest = converted
    table = read_table(Path(dest) / "events")
    for row in table.select("eventid", "region", "year", "month", "day").iter_rows():
        event_id, region, year, month, day = row
        assert f"region={region}/year={year}/month={month}/day={day}" == (
            corpus.events[event_id].partition
        )
    late = table.filter(table["eventid"].is_in(list(corpus.late_event_ids)))
    assert late.height == len(corpus.late_event_ids) > 0


def test_every_value_is_as_the_raw_table_shows_it_and_nothing_is_lost(corpus, converted):
    _, dest = converted
    rows = {row["eventid"]: row for row in read_table(Path(dest) / "events").to_dicts()}
    for event_id, expected in corpus.events.items():
        row = rows[event_id]
        assert_row_preserves(expected.record, row)
        for column, key in PAYLOADS.items():
            assert row[column] == expected.payload_text[key], (event_id, column)
        assert (row["unmapped"] is not None) == (event_id in corpus.unknown_field_event_ids)


def test_a_rerun_converts_nothing_and_changes_nothing(corpus, converted):
    _, dest = converted
    files = sorted((Path(dest) / "events").rglob("*.parquet"))
    again = run_ingest(str(corpus.root / "AWSLogs"), str(dest), lookback_days=0)
    assert again.objects_converted == 0
    assert again.objects_seen == 0  # every folder is closed and done: listed, nothing new
    assert sorted((Path(dest) / "events").rglob("*.parquet")) == files


def test_two_worker_processes_write_the_same_table(corpus, converted, tmp_path):
    _, dest = converted
    settings = Settings(batch_bytes=64 * 1024, batch_objects=7, workers=2)
    parallel = run_ingest(
        str(corpus.root / "AWSLogs"), str(tmp_path), settings=settings, lookback_days=0
    )
    assert parallel.events_written == len(corpus.events)
    ours, theirs = read_table(Path(dest) / "events"), read_table(tmp_path / "events")
    order = ["region", "year", "month", "day", "eventid"]
    assert ours.sort(order).equals(theirs.sort(order))


def test_the_event_id_index_forgets_old_partitions_and_stays_correct(corpus, tmp_path, monkeypatch):
    from flows.batch import KnownEventIds

    # Every partition is dropped from memory as soon as another is loaded: each lookup
    # reloads the partition's saved index (and reads the files it does not cover).
    monkeypatch.setattr(KnownEventIds, "MAX_EVENT_IDS", 1)
    settings = Settings(batch_bytes=64 * 1024, batch_objects=7)
    summary = run_ingest(
        str(corpus.root / "AWSLogs"), str(tmp_path), settings=settings, lookback_days=0
    )
    table = read_table(tmp_path / "events")
    assert sorted(table["eventid"]) == sorted(corpus.events)
    assert summary.duplicates_dropped == corpus.total_records - len(corpus.events)
