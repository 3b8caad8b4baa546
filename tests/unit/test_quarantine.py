"""Quarantine entries: built from a batch's problems, re-drivable, readable back."""

from __future__ import annotations

import pytest

from transforms.convert import LogBytes, RecordSelection, convert_objects
from transforms.quarantine import (
    QuarantineFileError,
    after_redrive,
    decode_entries,
    digest,
    encode_entries,
    problems_of,
    quarantine_entries,
    selection_of,
)

GOOD = b'{"eventTime":"2024-01-05T10:00:00Z","awsRegion":"us-east-1","eventID":"%s"}'
NO_TIME = b'{"awsRegion":"us-east-1","eventID":"%s"}'


def document(*records: bytes) -> bytes:
    return b'{"Records":[' + b",".join(records) + b"]}"


def test_an_entry_for_each_object_with_a_problem_and_none_for_the_others():
    clean = LogBytes("clean", document(GOOD % b"a"))
    partly = LogBytes("partly", document(GOOD % b"b", NO_TIME % b"c", b"7", GOOD % b"d"))
    cut = document(GOOD % b"e", GOOD % b"f", GOOD % b"g")
    damaged = LogBytes("damaged", cut[: cut.index(b'"g"')])
    inputs = [clean, partly, damaged]
    converted = convert_objects(inputs)
    entries = quarantine_entries(converted, inputs, "batch1", "2024-01-06T00:00:00+00:00")

    assert [e.url for e in entries] == ["partly", "damaged"]
    partly_entry, damaged_entry = entries
    assert (partly_entry.size, partly_entry.sha256) == (len(partly.data), digest(partly.data))
    assert partly_entry.reason is None and partly_entry.records_before_damage is None
    assert [(r.record, r.event_id, r.reason) for r in partly_entry.records] == [
        (1, "c", "record has no eventTime"),
        (2, None, "record is not a JSON object"),
    ]
    assert selection_of(partly_entry) == RecordSelection(frozenset({1, 2}))
    assert damaged_entry.reason is not None and "not valid JSON" in damaged_entry.reason
    assert damaged_entry.records_before_damage == 2
    assert selection_of(damaged_entry) == RecordSelection(frozenset(), rest_from=2)
    assert [p.as_dict() for p in problems_of(partly_entry)] == [
        {"key": "partly", "reason": "record has no eventTime", "record": 1, "event_id": "c"},
        {"key": "partly", "reason": "record is not a JSON object", "record": 2},
    ]


def test_after_a_redrive_only_what_still_fails_remains():
    data = document(GOOD % b"b", NO_TIME % b"c", b"7")
    log = LogBytes("partly", data)
    [entry] = quarantine_entries(convert_objects([log]), [log], "b1", "t0")
    # A "fix": record 1 now has a time (as if the decoder had learnt to read it).
    fixed = document(GOOD % b"b", GOOD % b"c", b"7")
    retry = LogBytes("partly", fixed, only=selection_of(entry))
    converted = convert_objects([retry])
    assert converted.placed.events["eventid"].to_list() == ["c"]
    left = after_redrive(entry, converted, fixed, "t1")
    assert left is not None
    assert [r.record for r in left.records] == [2]
    assert (left.redrives, left.last_redrive, left.quarantined) == (1, "t1", "t0")
    assert left.sha256 == digest(fixed)

    healed = LogBytes("partly", document(GOOD % b"b"), only=RecordSelection(frozenset({0})))
    assert after_redrive(entry, convert_objects([healed]), healed.data, "t2") is None


def test_entries_round_trip_through_json_lines_and_bad_lines_are_named():
    log = LogBytes("k", b"")
    entries = quarantine_entries(convert_objects([log]), [log], "b1", "t0")
    data = encode_entries(entries)
    assert data.count(b"\n") == 1 and b'"records"' not in data  # defaults are left out
    assert decode_entries(data + b"\n", "q.jsonl") == entries
    with pytest.raises(QuarantineFileError, match="line 2 is not a quarantine entry") as raised:
        decode_entries(data + b'{"url": 1}\n', "q.jsonl")
    assert raised.value.key == "q.jsonl"
