"""The native scanner and the pure-Python path write the same frame, record for record."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import require
from tests.corpus import generate_corpus
from tests.hostile import build_hostile_corpus
from transforms import native
from transforms.convert import LogBytes, convert_objects
from transforms.records import RecordRows, read_document, rows_to_frame

BASE = b'"eventTime":"2024-01-05T10:00:00Z","awsRegion":"us-east-1","eventID":"e1"'
GOOD = b'{"eventTime":"2024-01-05T10:00:01Z","awsRegion":"us-east-1","eventID":"g","readOnly":true}'

ODD_RECORDS = [
    # fields CloudTrail does not have yet, at every depth
    b"{" + BASE + b',"newTop":[1,{"a":2}]}',
    b"{" + BASE + b',"userIdentity":{"type":"IAMUser","newIdentityField":"x"}}',
    b"{" + BASE + b',"resources":[{"ARN":"a"},null,{"type":"t","partition":"aws"}]}',
    b"{" + BASE + b',"resources":[{"ARN":"a","Extra":{}}],"zzz":null,"Readonly":"x"}',
    # values of another JSON type than the schema's
    b"{" + BASE + b',"eventName":5,"readOnly":"yes","managementEvent":1.50}',
    b"{" + BASE + b',"userIdentity":"root","resources":{"ARN":"a"}}',
    b"{" + BASE + b',"readOnly":{"a":[true]},"userAgent":false}',
    # escapes: in values, in payload strings, in keys; pairs and lone surrogates
    b"{" + BASE + rb',"userAgent":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\u0000"}',
    b"{" + BASE + rb',"requestParameters":"{\"a\":1}\u00e9","responseElements":"plain"}',
    b"{" + BASE + rb',"userAgent":"\ud83d alone"}',
    b"{" + BASE + rb',"requestParameters":{"k":"\udc00"}}',
    b"{" + BASE + rb',"event\u004eame":"escaped key"}',
    # payload forms that must survive byte for byte
    b"{" + BASE + b',"requestParameters":{ "b" : [ 1.0 , -0 , 1e-07, 2E+3 ] , "c":{} } }',
    b"{" + BASE + b',"responseElements":true,"additionalEventData":-12.5e3,"insightDetails":[]}',
    b"{" + BASE + b',"requestParameters":null,"responseElements":"","errorCode":""}',
    # shapes: empty and null structs and lists, repeated keys, odd spacing
    b"{" + BASE + b',"userIdentity":{},"resources":[],"tlsDetails":null,"addendum":{}}',
    b"{" + BASE + b',"resources":[null],"userIdentity":{"sessionContext":null}}',
    b"{" + BASE + b',"eventName":"first","eventName":"second"}',
    b'{ "eventTime" :\t"2024-01-05T10:00:00Z" ,\n"awsRegion":"eu-west-1","eventID":"e1" }',
    b"{}",
    # not records at all
    b"null",
    b'"a string"',
    b"[1,2]",
    b'{"eventID":"bad","eventTime":"2024-01-05T10:00:00Z","x":"\x01raw control"}',
    b'{"eventID":"n","eventTime":"2024-01-05T10:00:00Z","requestParameters":01}',
    b'{"eventID":"n","eventTime":"2024-01-05T10:00:00Z","requestParameters":[1,]}',
]


def _require_native() -> None:
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")


def both_paths(monkeypatch: pytest.MonkeyPatch, objects: list[LogBytes]):
    """The batch converted by the pure-Python path, then by the native scanner."""
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "1")
    pure = convert_objects(objects)
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    fast = convert_objects(objects)
    return pure, fast


def assert_same_output(pure, fast) -> None:
    assert_frame_equal(pure.placed.events, fast.placed.events)
    assert [p.as_dict() for p in pure.problems] == [p.as_dict() for p in fast.problems]
    assert pure.placed.duplicates_dropped == fast.placed.duplicates_dropped
    assert pure.unreadable == fast.unreadable


def test_the_switch_chooses_the_path(monkeypatch):
    _require_native()
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "1")
    assert RecordRows().scanner is None
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    assert RecordRows().scanner is not None


@pytest.mark.parametrize("odd", ODD_RECORDS)
def test_an_odd_record_among_good_ones_gives_the_same_rows_and_problems(monkeypatch, odd):
    _require_native()
    document = b'{"Records":[' + GOOD + b"," + odd + b"," + GOOD.replace(b'"g"', b'"h"') + b"]}"
    pure, fast = both_paths(monkeypatch, [LogBytes("k", document, "us-east-1")])
    assert_same_output(pure, fast)


def test_the_scanner_takes_documents_the_pure_path_reads_whole(monkeypatch):
    _require_native()
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    records = RecordRows()
    document = b'{"Records":[' + GOOD + b"," + ODD_RECORDS[0] + b"]}"
    assert read_document(document, "k", records)
    assert records.scanner.rows == 2  # both rows, the odd one back from the careful path
    frame = rows_to_frame(records)
    assert frame["unmapped"].to_list() == [None, '{"newTop":[1,{"a":2}]}']
    assert frame["readonly"].to_list() == ["true", None]


def test_a_seeded_corpus_gives_the_same_frame_both_ways(monkeypatch, tmp_path: Path):
    _require_native()
    generate_corpus(tmp_path, seed=7, events=3_000, events_per_object=150, unknown_field_rate=0.05)
    paths = sorted(p for p in tmp_path.rglob("*.json.gz") if "/CloudTrail/" in p.as_posix())
    objects = [LogBytes(p.as_posix(), p.read_bytes(), p.parts[-5]) for p in paths]
    pure, fast = both_paths(monkeypatch, objects)
    assert pure.placed.events.height > 2_900
    assert_same_output(pure, fast)


def test_the_hostile_corpus_gives_the_same_frame_both_ways(monkeypatch, tmp_path: Path):
    _require_native()
    corpus = build_hostile_corpus(tmp_path)
    objects = [
        LogBytes(name, path.read_bytes(), "us-east-1") for name, path in corpus.objects.items()
    ]
    pure, fast = both_paths(monkeypatch, objects)
    assert pure.problems  # it is hostile
    assert_same_output(pure, fast)


def test_a_document_split_across_chunks_keeps_its_order(monkeypatch):
    _require_native()
    from transforms import records as records_module

    monkeypatch.setattr(records_module, "SCANNED_CHUNK_ROWS", 2)
    objects = [
        LogBytes(f"k{i}", gzip.compress(b'{"Records":[' + GOOD + b"," + odd + b"]}"), "us-east-1")
        for i, odd in enumerate(ODD_RECORDS)
    ]
    # a broken document between scanned ones takes the pure path, in its place
    objects.insert(3, LogBytes("broken", b'{"Records":[' + GOOD + b",{,}]}", "us-east-1"))
    pure, fast = both_paths(monkeypatch, objects)
    assert_same_output(pure, fast)
    assert isinstance(fast.placed.events, pl.DataFrame)
