"""Records with fields the schema does not know: the scanner writes the Python path's row
and ``unmapped`` text itself, byte for byte, at every depth of the record."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random
from typing import Any

import pytest
from polars.testing import assert_frame_equal

from schemas.cloudtrail import EVENTS
from tests.conftest import require
from tests.corpus import generate_corpus
from tests.unit.test_native import assert_same_output, both_paths
from transforms import native
from transforms.convert import LogBytes
from transforms.decode import decompress

# Objects the schema knows, where CloudTrail may add a field: (path of keys, the struct's keys).
KNOWN_OBJECTS: list[tuple[str, ...]] = [
    (),
    ("userIdentity",),
    ("userIdentity", "sessionContext"),
    ("userIdentity", "sessionContext", "attributes"),
    ("userIdentity", "sessionContext", "sessionIssuer"),
    ("userIdentity", "sessionContext", "webIdFederationData"),
    ("userIdentity", "onBehalfOf"),
    ("userIdentity", "inScopeOf"),
    ("tlsDetails",),
    ("addendum",),
]

# Values as written: whitespace, number forms and escapes that must survive byte for byte.
VALUES = [
    b'"v"',
    b"1",
    b"-0.5e+07",
    b"1.0E3",
    b"true",
    b"null",
    b"[]",
    b"{}",
    b'[ 1 , "two" , { "x" : null } ]',
    b'{"a":{"b":[{"c":"\\u00e9\\ud83d\\ude00\\"\\\\"}]},"d":[[[]]]}',
    b'"caf\xc3\xa9 \\n \\t \\/"',
    b'"\xe2\x80\xa8 line separator as written"',
]
KEYS = ["futureField", "newFeatureFlag", "x", "clé", "\u2028", "eventname", "Readonly", "ARN2"]


def _require_native() -> None:
    require(native.native_built(), "the native scanner is not built (no C compiler at install?)")


def _records(tmp_path: Path, seed: int, events: int) -> list[dict[str, Any]]:
    generate_corpus(tmp_path, seed=seed, events=events, unknown_field_rate=0.0)
    records: list[dict[str, Any]] = []
    for path in sorted(p for p in tmp_path.rglob("*.json.gz") if "/CloudTrail/" in p.as_posix()):
        document, _ = decompress(path.read_bytes(), 1 << 30)
        records.extend(json.loads(document)["Records"])
    return records


def _object_at(record: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The object at ``path``, made (empty) where the record has none."""
    here = record
    for key in path:
        if not isinstance(here.get(key), dict):
            here[key] = {}
        here = here[key]
    return here


def _with_unknown_members(record: dict[str, Any], rng: Random, *, clean: bool) -> bytes:
    """The record's JSON with unknown members (values as raw text) in known objects and in
    elements of ``resources``; ``clean``: none the scanner must hand to the fallback."""
    placeholders: dict[str, bytes] = {}

    def add(target: dict[str, Any]) -> None:
        keys = rng.sample(KEYS, rng.randint(1, 3))
        for key in keys:
            if key in target:
                continue
            token = f"@@{len(placeholders)}@@"
            placeholders[token] = rng.choice(VALUES)
            # insert at a random place among the object's members (document order matters)
            items = list(target.items())
            items.insert(rng.randint(0, len(items)), (key, token))
            target.clear()
            target.update(items)

    if rng.random() < 0.3:  # a known struct that is null or empty, a known array empty
        shapes: list[tuple[str, Any]] = [("tlsDetails", None), ("addendum", {}), ("resources", [])]
        key, value = rng.choice(shapes)
        record[key] = value
    for path in rng.sample(KNOWN_OBJECTS, rng.randint(1, 4)):
        add(_object_at(record, path))
    if rng.random() < 0.4:
        bucket = {"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}
        resources = record.get("resources") or [bucket]
        record["resources"] = resources + ([None] if rng.random() < 0.3 else [])
        element = rng.choice([r for r in record["resources"] if r is not None])
        add(element)
    if not clean:  # what still takes the fallback: escaped keys, repeated keys, other types
        odd = rng.choice(["escaped", "repeated", "type", "many"])
        if odd == "escaped":
            record["new\\u0046ield"] = 1  # escaped again by dumps: the key is written escaped
        elif odd == "type":
            record["eventName"] = 7
        elif odd == "many":
            for i in range(17):
                record[f"extra{i}"] = i
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,", " : ")])
    text = json.dumps(record, ensure_ascii=False, separators=separators).encode()
    for token, raw in placeholders.items():
        text = text.replace(f'"{token}"'.encode(), raw)
    if not clean and odd == "repeated":
        text = text[:-1] + b',"futureField":1,"futureField":2}'
    return text


def _document(records: list[bytes]) -> bytes:
    return b'{"Records":[' + b",".join(records) + b"]}"


def _fallbacks(document: bytes) -> list[int]:
    """Positions the scanner hands to the Python path."""
    scanner = native.new_scanner(EVENTS)
    assert scanner is not None
    handed: list[int] = []

    def fallback(span: bytes, position: int) -> None:
        handed.append(position)

    assert scanner.add(document, fallback) is not None
    return handed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unknown_members_at_every_depth_give_the_python_paths_rows(monkeypatch, tmp_path, seed):
    _require_native()
    rng = Random(seed)
    records = _records(tmp_path, seed, 400)
    clean = [_with_unknown_members(r, rng, clean=True) for r in records]
    objects = [
        LogBytes(f"k{i}", _document(clean[i : i + 50]), "us-east-1")
        for i in range(0, len(clean), 50)
    ]
    pure, fast = both_paths(monkeypatch, objects)
    assert_same_output(pure, fast)
    unmapped = fast.placed.events["unmapped"]
    assert unmapped.null_count() == 0  # every record had some
    assert unmapped.str.contains('"userIdentity":{', literal=True).any()
    assert unmapped.str.contains('"resources":[', literal=True).any()
    # and the scanner wrote them itself: not one went to the Python path
    assert _fallbacks(_document(clean)) == []


def test_what_the_scanner_cannot_reproduce_still_takes_the_python_path(monkeypatch, tmp_path):
    _require_native()
    rng = Random(11)
    records = _records(tmp_path, 11, 200)
    mixed = [_with_unknown_members(r, rng, clean=rng.random() < 0.5) for r in records]
    objects = [
        LogBytes(f"k{i}", _document(mixed[i : i + 40]), "us-east-1")
        for i in range(0, len(mixed), 40)
    ]
    pure, fast = both_paths(monkeypatch, objects)
    assert_same_output(pure, fast)
    assert _fallbacks(_document(mixed))  # the odd ones did go to it


@pytest.mark.parametrize(
    ("members", "unmapped"),
    [
        (b'"new":{ "a" : 1 }', b'{"new":{ "a" : 1 }}'),
        (
            b'"userIdentity":{"type":"Root","x":[1, 2],"y":null}',
            b'{"userIdentity":{"x":[1, 2],"y":null}}',
        ),
        (
            b'"userIdentity":{"sessionContext":{"sessionIssuer":{"z":"\\u00e9"}},"w":0}',
            b'{"userIdentity":{"sessionContext":{"sessionIssuer":{"z":"\\u00e9"}},"w":0}}',
        ),
        (
            b'"resources":[ {"ARN":"a"} , null, {"ARN":"b","n":1} ],"q":true',
            b'{"resources":[ {"ARN":"a"} , null, {"ARN":"b","n":1} ],"q":true}',
        ),
        (b'"resources":[{"ARN":"a"}],"tlsDetails":{},"addendum":null', None),
        (b'"userIdentity":{"sessionContext":{"attributes":{}}}', None),
    ],
)
def test_the_unmapped_text_is_the_python_paths(monkeypatch, members, unmapped):
    _require_native()
    record = b'{"eventTime":"2024-01-05T10:00:00Z","awsRegion":"us-east-1","eventID":"e",'
    document = _document([record + members + b"}"])
    pure, fast = both_paths(monkeypatch, [LogBytes("k", document, "us-east-1")])
    assert_frame_equal(pure.placed.events, fast.placed.events)
    expected = None if unmapped is None else unmapped.decode()
    assert fast.placed.events["unmapped"].to_list() == [expected]
    assert _fallbacks(document) == []


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    "members",
    [
        b'"deep":' + _nested(509),  # the record, plus 510 levels: as deep as the scanner goes
        b'"deep":' + _nested(511),
        b'"userIdentity":{"deep":' + _nested(509) + b"}",
        b'"userIdentity":{"deep":' + _nested(600) + b"}",
        b'"resources":[{"ARN":"a","deep":' + _nested(2_000) + b"}]",
        b'"new":"\\ud800 alone"',
        b'"new":"\\udc00"',
        b'"new\\u0041":1',
        b'"userIdentity":{"new":1,"new":2}',
    ],
)
def test_hostile_unknown_members_behave_as_on_the_python_path(monkeypatch, members):
    _require_native()
    record = b'{"eventTime":"2024-01-05T10:00:00Z","awsRegion":"us-east-1","eventID":"e",'
    good = record.replace(b'"e"', b'"g"') + b'"userAgent":"ua"}'
    document = _document([good, record + members + b"}", good.replace(b'"g"', b'"h"')])
    pure, fast = both_paths(monkeypatch, [LogBytes("k", document, "us-east-1")])
    assert_frame_equal(pure.placed.events, fast.placed.events)
    assert [p.as_dict() for p in pure.problems] == [p.as_dict() for p in fast.problems]
