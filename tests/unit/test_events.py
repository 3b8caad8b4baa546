"""Placing events: event-time partitions, unplaceable records reported, eventIDs once."""

from __future__ import annotations

import msgspec
import polars as pl
import pytest

from transforms.events import _event_timestamps, drop_known_events, place_events, split_partitions
from transforms.records import RecordRows, read_records


def record(event_id: str | None, time: str | None, region: str | None = "us-east-1") -> bytes:
    fields = {"eventID": event_id, "eventTime": time, "awsRegion": region, "eventName": "X"}
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None})


def place(*records: bytes, key: str = "k", folder_region: str | None = "us-east-1"):
    decoded = RecordRows()
    read_records([msgspec.Raw(r) for r in records], key, decoded)
    return place_events(decoded, [folder_region])


def test_partition_comes_from_the_event_time_not_the_delivery_folder():
    # Delivered in the folder of 2024-01-06, logged on 2024-01-05 at 23:59:58 UTC.
    placed = place(record("e1", "2024-01-05T23:59:58Z"), key="AWSLogs/.../2024/01/06/f.json.gz")
    assert list(split_partitions(placed.events)) == [("us-east-1", "2024", "01", "05")]
    row = placed.events.row(0, named=True)
    assert row["eventtime"] == "2024-01-05T23:59:58Z"
    assert str(row["eventtimestamp"]) == "2024-01-05 23:59:58+00:00"


@pytest.mark.parametrize(
    ("time", "partition"),
    [
        ("2024-01-05T00:00:00Z", ("2024", "01", "05")),
        ("2024-12-31T23:59:59.999Z", ("2024", "12", "31")),
        ("2024-01-05T23:30:00-01:00", ("2024", "01", "06")),  # an offset moves it to UTC's day
        ("2020-02-29T12:00:00Z", ("2020", "02", "29")),
    ],
)
def test_partition_values_are_zero_padded_utc(time, partition):
    placed = place(record("e", time))
    assert list(split_partitions(placed.events)) == [("us-east-1", *partition)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (record("e2", None), "record has no eventTime"),
        (record("e2", "redacted"), "eventTime is not an ISO-8601 time"),
        (record("e2", "2022-12-11 19:42:55"), "eventTime is not an ISO-8601 time"),
        (record("e2", "2024-13-45T00:00:00Z"), "eventTime is not an ISO-8601 time"),
        (record("e2", "2024-01-05T00:00:00Z", "../../etc"), "not a region name"),
    ],
)
def test_unplaceable_records_are_reported_with_key_position_and_event_id(bad, reason):
    placed = place(record("e1", "2024-01-05T01:00:00Z"), bad, record("e3", "2024-01-05T02:00:00Z"))
    assert placed.events["eventid"].to_list() == ["e1", "e3"]
    [problem] = placed.problems
    assert (problem.key, problem.record, problem.event_id) == ("k", 1, "e2")
    assert reason in problem.reason


def test_region_missing_from_the_record_falls_back_to_the_folder_region():
    placed = place(record("e", "2024-01-05T00:00:00Z", region=None), folder_region="eu-west-3")
    assert list(split_partitions(placed.events)) == [("eu-west-3", "2024", "01", "05")]
    unplaced = place(record("e", "2024-01-05T00:00:00Z", region=None), folder_region=None)
    assert unplaced.events.is_empty()
    assert "no awsRegion" in unplaced.problems[0].reason


def test_each_event_id_is_placed_once_but_events_without_id_are_all_kept():
    placed = place(
        record("dup", "2024-01-05T00:00:00Z"),
        record(None, "2024-01-05T00:00:01Z"),
        record("dup", "2024-01-05T00:00:00Z"),
        record(None, "2024-01-05T00:00:02Z"),
    )
    assert placed.events["eventid"].to_list() == ["dup", None, None]
    assert placed.duplicates_dropped == 1
    assert placed.records_read == 4


def test_events_already_in_the_table_are_dropped():
    placed = place(record("a", "2024-01-05T00:00:00Z"), record("b", "2024-01-05T00:00:00Z"))
    fresh = drop_known_events(placed.events, pl.Series(["a", "zzz"]))
    assert fresh["eventid"].to_list() == ["b"]
    assert drop_known_events(placed.events, pl.Series([], dtype=pl.String)).height == 2


EVENT_TIMES = {
    "2024-01-01T00:00:00Z": "2024-01-01 00:00:00+00:00",
    "2024-01-01T00:00:00.123Z": "2024-01-01 00:00:00.123000+00:00",
    "2024-01-01T00:00:00.123456789Z": "2024-01-01 00:00:00.123456+00:00",
    "2024-01-01T00:00:00.5+02:00": "2023-12-31 22:00:00.500000+00:00",
    "2024-01-01T00:00:00+00:00": "2024-01-01 00:00:00+00:00",
    "2024-02-29T23:59:59Z": "2024-02-29 23:59:59+00:00",
    "2024-01-01T23:59:60Z": "2024-01-02 00:00:00+00:00",  # a leap second, as chrono reads it
    "2024-1-1T0:0:0Z": "2024-01-01 00:00:00+00:00",
    "1969-12-31T23:59:59Z": "1969-12-31 23:59:59+00:00",
    "2023-02-29T00:00:00Z": None,
    "2024-01-01T24:00:00Z": None,
    "2024-01-01T00:00:00z": None,
    "2024-01-01 00:00:00Z": None,
    "2024-01-01T00:00:00": None,
    "2024-01-01T00:00:00Z ": None,
    "2024-01-01T00:00:00.Z": None,
    "2024-01-01T00:00:00,5Z": None,
    "2024-13-01T00:00:00Z": None,
    "": None,
}


@pytest.mark.parametrize("among", [1, 50_000])
def test_event_times_parse_alike_whichever_parser_reads_them(among):
    # CloudTrail's own form has a fast path; amid 50,000 such rows, every other form must
    # still be read as alone (or refused) as before it existed.
    edge = list(EVENT_TIMES)
    canonical = [
        f"2024-01-0{1 + i % 7}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z" for i in range(among)
    ]
    times = pl.Series("eventtime", canonical[: among // 2] + edge + canonical[among // 2 :])
    parsed = _event_timestamps(times)[among // 2 : among // 2 + len(edge)]
    assert [None if v is None else str(v) for v in parsed] == list(EVENT_TIMES.values())
