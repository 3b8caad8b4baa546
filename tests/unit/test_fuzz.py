"""Fuzzing the decoding and shaping steps with arbitrary bytes and arbitrary JSON.

Contract under test: for any input, ``decompress``, ``split_records``,
``read_records`` and ``convert_objects`` return (reporting what they could not
convert) or raise a ``PipelineError``; never anything else. And a good record is
never lost because of a bad one beside it, nor because the object was cut short
after it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import json_values_strategy
from transforms.convert import ConvertedBatch, LogBytes, RecordSelection, convert_objects
from transforms.decode import DecodedObject, decompress, split_records
from transforms.errors import PipelineError
from transforms.records import RecordRows, read_records, rows_to_frame

T = TypeVar("T")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = json_values_strategy(text=12, keys=8, width=4, leaves=12)


def returns_or_pipeline_error(call: Callable[[], T]) -> T | PipelineError:
    """Run ``call``; the only exception allowed out is the project's own."""
    try:
        return call()
    except PipelineError as error:
        return error


def convert(data: bytes, key: str = "k") -> ConvertedBatch:
    result = returns_or_pipeline_error(lambda: convert_objects([LogBytes(key, data, "us-east-1")]))
    assert isinstance(result, ConvertedBatch), f"convert_objects raised {result!r}"
    return result


def record_problem_positions(batch: ConvertedBatch) -> list[int]:
    return [p.record for p in batch.problems if p.record is not None]


# --- Arbitrary bytes ---------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2_000), compressed=st.booleans())
def test_arbitrary_bytes_convert_or_are_reported(data, compressed):
    payload = gzip.compress(data) if compressed else data
    assert isinstance(returns_or_pipeline_error(lambda: decompress(payload)), tuple)
    split = returns_or_pipeline_error(lambda: split_records(data))
    assert isinstance(split, DecodedObject | PipelineError), f"split_records returned {split!r}"
    if isinstance(split, DecodedObject):
        assert split.problem is None or split.problem.strip(), "a problem without a reason"
        # Records are spans of the input, never text the decoder made up.
        assert all(bytes(record) in data for record in split.records)
        if split.problem is None:
            assert data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"), "not an envelope"
    batch = convert(payload)
    assert all(p.key == "k" and p.reason for p in batch.problems)
    if batch.placed.events.height == 0 and batch.placed.records_read == 0:
        assert batch.problems, "nothing converted and nothing said"


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_inside_the_records_array(data):
    # The envelope is right; whatever sits inside it is judged, never fatal.
    batch = convert(b'{"Records":[' + data + b"]}")
    positions = record_problem_positions(batch)
    assert len(positions) == len(set(positions)), "a record is reported once"
    assert all(p.key == "k" and p.reason for p in batch.problems)


@FUZZ
@given(
    spans=st.lists(st.binary(max_size=60), max_size=6), only=st.none() | st.sets(st.integers(0, 6))
)
def test_arbitrary_record_spans_each_become_a_row_or_a_problem(spans, only):
    rows = RecordRows()
    selection = None if only is None else RecordSelection(frozenset(only))
    outcome = returns_or_pipeline_error(
        lambda: read_records([msgspec.Raw(s) for s in spans], "k", rows, only=selection)
    )
    assert not isinstance(outcome, PipelineError)
    frame = rows_to_frame(rows)
    wanted = [i for i in range(len(spans)) if selection is None or i in selection]
    assert sorted(rows.positions + [p.record for p in rows.problems]) == wanted  # type: ignore[type-var]
    assert frame.height == len(rows.positions)


# --- Arbitrary JSON ----------------------------------------------------------------------


@FUZZ
@given(value=json_values)
def test_any_json_document_converts_or_is_reported(value):
    batch = convert(json.dumps(value).encode())
    records = value.get("Records") if isinstance(value, dict) else None
    if isinstance(records, list):
        # Every element is accounted for: a row (placed or a dropped duplicate) or a problem.
        placed = batch.placed
        accounted = (
            placed.events.height + placed.duplicates_dropped + len(record_problem_positions(batch))
        )
        assert accounted == len(records)
        assert all(p.record is not None for p in batch.problems)
    else:
        assert batch.placed.events.height == 0
        assert [p.record for p in batch.problems] == [None]


@FUZZ
@given(
    event_time=json_values | st.just("2024-01-05T10:00:00Z"),
    region=json_values | st.just("eu-west-1"),
    event_id=json_values,
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_any_values_in_the_fields_that_place_a_record(event_time, region, event_id, extra):
    record = {**extra, "eventTime": event_time, "awsRegion": region, "eventID": event_id}
    batch = convert(json.dumps({"Records": [record]}).encode())
    assert batch.placed.events.height + len(batch.problems) == 1
    if batch.placed.events.height:
        [row] = batch.placed.events.select("region", "year", "month", "day").rows()
        assert all(isinstance(part, str) and "/" not in part and ".." not in part for part in row)


# --- Good records beside bad ones ----------------------------------------------------------


def good_record(index: int) -> bytes:
    return json.dumps(
        {
            "eventVersion": "1.09",
            "eventTime": f"2024-01-05T10:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "awsRegion": "us-east-1",
            "eventID": f"good-{index}",
            "requestParameters": {"bucketName": "b", "key": f"k{index}"},
        },
        separators=(",", ":"),
    ).encode()


_BASE_BAD = b'"eventVersion":"1.09","awsRegion":"us-east-1","eventID":"bad"'
bad_records = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"{" + _BASE_BAD + b"}",  # no eventTime
            b"{" + _BASE_BAD + b',"eventTime":"redacted"}',
            b"{" + _BASE_BAD + b',"eventTime":"2022-12-11 19:42:55"}',
            b"{" + _BASE_BAD + b',"eventTime":"2024-01-05T10:00:00Z","awsRegion":"../../etc"}',
            b"{" + _BASE_BAD + b',"eventTime":"2024-01-05T10:00:00Z","userAgent":"\xff\xfe"}',
            b"{" + _BASE_BAD + b',"eventTime":"2024-01-05T10:00:00Z","requestParameters":"\xc3"}',
            b"{" + _BASE_BAD + b',"eventTime":"2024-01-05T10:00:00Z","eventName":"\\ud800"}',
            b"{" + _BASE_BAD + b',,"eventTime":"2024-01-05T10:00:00Z"}',  # broken, balanced
            b"{"
            + _BASE_BAD
            + b',"eventTime":"2024-01-05T10:00:00Z","x":'
            + b"[" * 3000
            + b"]" * 3000
            + b"}",
        ]
    ),
)
items = st.lists(st.none() | bad_records, min_size=1, max_size=12)
"""None stands for a good record (its index makes its eventID); bytes for a bad one."""


def document_of(chosen: list[bytes | None]) -> tuple[bytes, dict[str, int], list[int]]:
    """The document, the end offset of each good record by eventID, the bad positions."""
    parts: list[bytes] = []
    ends: dict[str, int] = {}
    bad: list[int] = []
    offset = len(b'{"Records":[')
    for position, item in enumerate(chosen):
        body = good_record(position) if item is None else item
        if position:
            offset += 1
        offset += len(body)
        if item is None:
            ends[f"good-{position}"] = offset
        else:
            bad.append(position)
        parts.append(body)
    return b'{"Records":[' + b",".join(parts) + b"]}", ends, bad


@FUZZ
@given(chosen=items, compressed=st.booleans())
def test_a_bad_record_never_costs_a_good_one(chosen, compressed):
    document, ends, bad = document_of(chosen)
    batch = convert(gzip.compress(document) if compressed else document)
    converted = Counter(batch.placed.events["eventid"].to_list())
    assert converted == Counter(list(ends)), "each good record exactly once, nothing else"
    assert sorted(record_problem_positions(batch)) == bad
    assert [p for p in batch.problems if p.record is None] == []


@FUZZ
@given(chosen=items, cut=st.floats(0, 1), compressed=st.booleans())
def test_a_cut_object_keeps_every_good_record_before_the_cut(chosen, cut, compressed):
    document, ends, _ = document_of(chosen)
    if compressed:
        packed = gzip.compress(document)
        data = packed[: int(len(packed) * cut)]
        readable = len(zlib.decompressobj(wbits=31).decompress(data))
    else:
        data = document[: int(len(document) * cut)]
        readable = len(data)
    batch = convert(data)
    converted = Counter(batch.placed.events["eventid"].to_list())
    assert set(converted) <= set(ends) and max(converted.values(), default=1) == 1
    assert {e for e, end in ends.items() if end <= readable} <= set(converted)
    if readable < len(document):
        assert any(p.record is None for p in batch.problems), "the damage is reported"


@FUZZ
@given(chosen=items, data=st.data())
def test_re_driving_a_selection_converts_exactly_the_selection(chosen, data):
    document, _, _ = document_of(chosen)
    wanted = data.draw(st.sets(st.integers(0, len(chosen) - 1)))
    batch = returns_or_pipeline_error(
        lambda: convert_objects(
            [LogBytes("k", document, "us-east-1", RecordSelection(frozenset(wanted)))]
        )
    )
    assert isinstance(batch, ConvertedBatch)
    expected = {f"good-{i}" for i in wanted if chosen[i] is None}
    assert Counter(batch.placed.events["eventid"].to_list()) == Counter(expected)
    assert set(record_problem_positions(batch)) == {i for i in wanted if chosen[i] is not None}
