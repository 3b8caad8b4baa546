"""Golden tests on real CloudTrail, read in place from ../shared/data.

Every event lands once, in its event-time partition; every column shows what the
raw table shows; payload text is byte-for-byte a span of the delivered file;
and nothing of any record is lost.
"""

from __future__ import annotations

import gzip
import json

import pytest

from flows.ingest import run_ingest
from tests.helpers import assert_row_preserves, read_table, records_of
from transforms.convert import LogBytes, convert_objects

JSON_TEXT_COLUMNS = (
    "requestparameters",
    "responseelements",
    "additionaleventdata",
    "serviceeventdetails",
)


@pytest.mark.parametrize("sample", ["invictus-ir", "trailscraper"])
def test_every_delivered_event_is_in_the_table_once_with_nothing_lost(
    shared_data, tmp_path, sample
):
    files = sorted((shared_data / sample / "AWSLogs").rglob("*.json.gz"))
    summary = run_ingest(str(shared_data / sample / "AWSLogs"), str(tmp_path), lookback_days=0)
    table = read_table(tmp_path / "events")

    records = [r for f in files for r in records_of(f)]
    assert summary.problems == []
    assert summary.objects_converted == len(files)
    assert table.height == len(records) == summary.events_written
    assert table["eventid"].n_unique() == table.height

    rows = {row["eventid"]: row for row in table.to_dicts()}
    for record in records:
        row = rows[record["eventID"]]
        assert_row_preserves(record, row)
        day = record["eventTime"][:10].split("-")
        assert [row["region"], row["year"], row["month"], row["day"]] == [record["awsRegion"], *day]


def test_payload_text_is_a_byte_span_of_the_delivered_file(shared_data):
    files = sorted((shared_data / "invictus-ir" / "AWSLogs").rglob("*.json.gz"))
    raw = b"".join(gzip.decompress(f.read_bytes()) for f in files)
    events = convert_objects(LogBytes(str(f), f.read_bytes()) for f in files).placed.events
    checked = 0
    for column in JSON_TEXT_COLUMNS:
        for text in events[column].drop_nulls():
            if text.startswith(("{", "[")):
                assert text.encode() in raw, f"{column} text is not as written: {text[:80]}"
                checked += 1
    assert checked > 1000


def test_case_twin_keys_of_the_real_samples_survive(shared_data):
    files = sorted((shared_data / "invictus-ir" / "AWSLogs").rglob("*.json.gz"))
    events = convert_objects(LogBytes(str(f), f.read_bytes()) for f in files).placed.events
    twins = [
        json.loads(t, object_pairs_hook=list)
        for t in events["requestparameters"].drop_nulls()
        if '"Tagging"' in t and '"tagging"' in t
    ]
    assert twins, "the sample holds Tagging and tagging in one requestParameters object"
    assert all({"Tagging", "tagging"} <= {k for k, _ in pairs} for pairs in twins)


def test_hand_edited_events_convert_or_are_named(shared_data):
    """Panther's rule-test events: odd times and types, extra keys, placeholder eventIDs."""
    path = shared_data / "panther-events" / "panther_cloudtrail_test_logs.ndjson"
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    document = b'{"Records":[' + b",".join(lines) + b"]}"
    converted = convert_objects([LogBytes("panther.json", document, None)])
    placed = converted.placed

    reported = {p.record for p in placed.problems}
    assert placed.records_read == len(lines)
    assert len(reported) + placed.events.height + placed.duplicates_dropped == len(lines)
    for problem in placed.problems:
        assert problem.record is not None
        record = json.loads(lines[problem.record])
        time = record.get("eventTime")
        if "awsRegion" in problem.reason:
            assert not record.get("awsRegion"), problem
        else:  # Only times CloudTrail would never write are refused.
            assert time is None or " " in time or not time[:4].isdigit(), problem
    # Extra keys that CloudTrail never writes are kept, not dropped.
    assert (
        placed.events.filter(
            placed.events["unmapped"].str.contains('"p_log_type"', literal=True)
        ).height
        > 0
    )


def test_sample_readme_facts_hold(shared_data):
    """Guards the assumptions above: the samples are what their README says."""
    files = sorted((shared_data / "invictus-ir" / "AWSLogs").rglob("*.json.gz"))
    records = [r for f in files for r in records_of(f)]
    assert len(files) == 55
    assert len(records) == 2900
    # "2023-07-10, one account, us-east-1, 29 services, 260 API names"
    assert {r["eventTime"][:10] for r in records} == {"2023-07-10"}
    assert {r["awsRegion"] for r in records} == {"us-east-1"}
    assert len({r["recipientAccountId"] for r in records}) == 1
    assert len({r["eventSource"] for r in records}) == 29
    assert len({r["eventName"] for r in records}) == 260
    # "The account in the file names differs from recipientAccountId inside"
    assert {f.relative_to(shared_data / "invictus-ir").parts[1] for f in files} != {
        r["recipientAccountId"] for r in records
    }
