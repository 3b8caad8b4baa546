"""Hostile bytes at the decoding steps: each costs only what it breaks, and says why."""

from __future__ import annotations

import gzip

import pytest

from transforms.convert import LogBytes, RecordSelection, convert_objects
from transforms.decode import decompress, split_records


def record(event_id: str, **extra: str) -> bytes:
    fields = {"eventTime": "2024-01-05T10:00:00Z", "awsRegion": "us-east-1", "eventID": event_id}
    fields.update(extra)
    return b"{" + b",".join(f'"{k}":"{v}"'.encode() for k, v in fields.items()) + b"}"


def document(*records: bytes) -> bytes:
    return b'{"Records":[' + b",".join(records) + b"]}"


def converted(data: bytes):
    batch = convert_objects([LogBytes("k", data, "us-east-1")])
    return sorted(batch.placed.events["eventid"].to_list()), [p.as_dict() for p in batch.problems]


def test_a_byte_order_mark_is_not_damage():
    assert converted(b"\xef\xbb\xbf" + document(record("a"))) == (["a"], [])


def test_a_broken_record_in_the_middle_costs_only_itself():
    broken = b'{"eventID":"b",,"eventTime":"2024-01-05T10:00:00Z"}'
    events, problems = converted(document(record("a"), broken, record("c")))
    assert events == ["a", "c"]
    assert [(p["record"], p["event_id"]) for p in problems] == [(1, "b")]
    assert problems[0]["reason"].startswith("record is not valid JSON")


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_nesting_deeper_than_any_decoder_allows_costs_only_that_record(compressed):
    deep = b'{"eventID":"b","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    data = document(record("a"), deep, record("c"))
    events, problems = converted(gzip.compress(data) if compressed else data)
    assert events == ["a", "c"]
    assert problems == [
        {
            "key": "k",
            "reason": "record nests values too deeply to decode",
            "record": 1,
            "event_id": "b",
        }
    ]


def test_bytes_that_are_not_utf8_in_a_payload_cost_only_that_record():
    bad = b'{"eventTime":"2024-01-05T10:00:00Z","eventID":"b","requestParameters":{"k":"\xff"}}'
    events, problems = converted(document(record("a"), bad, record("c")))
    assert events == ["a", "c"]
    assert problems == [
        {"key": "k", "reason": "record is not valid UTF-8", "record": 1, "event_id": "b"}
    ]


def test_a_cut_inside_a_string_keeps_the_records_before_it():
    data = document(record("a"), record("b", userAgent="x]}{[y"))
    cut = data.index(b"]}{[") + 2  # the cut leaves brackets that would balance a naive count
    events, problems = converted(data[:cut])
    assert events == ["a"]
    assert [p.get("record") for p in problems] == [None]
    assert "kept the 1 complete records" in problems[0]["reason"]


def test_an_object_read_whole_reports_no_object_problem_for_its_bad_records():
    # msgspec refuses the document (a lone surrogate), but the envelope is whole.
    data = document(record("a"), record("b", eventName="\\ud800"), record("c"))
    assert split_records(data).problem is None
    events, problems = converted(data)
    assert events == ["a", "c"]
    assert [p["record"] for p in problems] == [1]


def test_records_before_the_damage_are_counted_for_a_re_drive():
    data = document(record("a"), record("b"), record("c"))
    batch = convert_objects([LogBytes("k", data[: data.index(b'"c"')], "us-east-1")])
    assert batch.records_before_damage == {"k": 2}
    assert batch.unreadable == set()
    empty = convert_objects([LogBytes("e", b"", "us-east-1")])
    assert empty.records_before_damage == {"e": 0}
    assert empty.unreadable == {"e"}


def test_a_selection_converts_only_its_records_with_their_own_positions():
    data = document(record("a"), record("b", eventTime="redacted"), record("c"), record("d"))
    only = RecordSelection(frozenset({1}), rest_from=3)
    batch = convert_objects([LogBytes("k", data, "us-east-1", only)])
    assert batch.placed.events["eventid"].to_list() == ["d"]
    assert [(p.record, p.event_id) for p in batch.problems] == [(1, "b")]
    assert 5 in only and 2 not in only and "x" not in only


def test_a_decompression_bomb_is_reported_without_inflating_it_whole():
    member = gzip.compress(b" " * (4 << 20))  # 4 MiB of blanks: a few KB of gzip
    bomb = gzip.compress(b'{"Records":[') + member * 16  # 64 MiB and more to come
    assert len(bomb) < 200_000
    batch = convert_objects([LogBytes("bomb", bomb, "us-east-1")], max_object_bytes=16 << 20)
    assert [p.as_dict() for p in batch.problems] == [
        {"key": "bomb", "reason": "inflates to more than 16,777,216 bytes "
         "(a decompression bomb?); not read"}
    ]  # fmt: skip
    assert batch.unreadable == {"bomb"}


def test_every_gzip_member_is_read_and_trailing_damage_keeps_them():
    first, second = document(record("a")), document(record("b"))
    members = gzip.compress(first) + gzip.compress(second)
    assert decompress(members) == (first + second, None)
    assert decompress(members + b"\0" * 512) == (first + second, None)  # zero padding
    inflated, problem = decompress(members + b"trailing junk")
    assert inflated == first + second
    assert problem == "gzip stream is damaged (bytes after its end); read what came before"
    inflated, problem = decompress(members[:-9])
    assert inflated.startswith(first) and problem is not None
