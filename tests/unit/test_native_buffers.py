"""The scanner's buffers start at the sizes the last chunk of the same schema needed."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from schemas.cloudtrail import EVENTS
from tests.conftest import require
from transforms import native
from transforms.records import RecordRows, read_document, rows_to_frame

RECORD = (
    b'{"eventTime":"2024-01-05T10:00:01Z","awsRegion":"us-east-1","eventID":"%d",'
    b'"userAgent":"a user agent longer than twelve bytes","requestParameters":{"n":%d}}'
)


def _capacities(scanner: Any) -> list[int]:
    raw = scanner.capacities
    return list(struct.unpack(f"{len(raw) // 8}q", raw))


def test_a_new_scanner_starts_from_the_last_chunks_sizes(monkeypatch: pytest.MonkeyPatch):
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    monkeypatch.setattr(native, "_capacities", {})
    fresh = _capacities(native.new_scanner(EVENTS))
    records = RecordRows()
    document = b'{"Records":[' + b",".join(RECORD % (i, i) for i in range(5_000)) + b"]}"
    assert read_document(document, "k", records)
    frame = rows_to_frame(records)  # the chunk is taken: its sizes are remembered
    learned = _capacities(native.new_scanner(EVENTS))
    assert max(learned) > 5_000 * 16 > max(fresh)  # e.g. the views of 5,000 values
    assert sum(learned) > sum(fresh)
    again = RecordRows()
    assert read_document(document, "k", again)
    assert rows_to_frame(again).equals(frame)


def test_capacities_of_another_shape_are_ignored(monkeypatch: pytest.MonkeyPatch):
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    scanner_type = type(scanner)
    spec = native._spec(EVENTS.root)
    default = scanner_type(spec).capacities
    assert scanner_type(spec, b"\x01" * 24).capacities == default
