"""Raw record spans -> a Polars frame of the schema's columns, with nothing lost.

Three decoders share one output. The fast one decodes a whole record into typed
msgspec Structs generated from the schema; free-form payloads arrive as
``msgspec.Raw``, their exact bytes, so key order, escapes, number forms and
case-twin keys stay as written. It refuses any record with a field the schema
does not know or a value of an unexpected type. A record refused only for new
fields is decoded leniently, and the fields it skipped are found by walking
object keys; a value of an unexpected type takes the careful path, which maps
what it can. Either way the rest is kept, byte for byte, in ``unmapped``.

Rows become Arrow columns every ``CHUNK_ROWS`` rows, while they are in the CPU's
cache, without a Python call per value: Structs are transposed in C (``astuple``
+ ``zip``), strings go to Arrow as they are, and raw spans are joined into one
buffer with computed offsets.

Where the native scanner is built (``transforms.native``), a whole document goes
to it first: it writes the Arrow buffers itself and hands each record it does
not handle to the same per-record path as above, whose row it takes back
re-encoded (so the row is the one the Python path makes, in its place).
"""

from __future__ import annotations

import gc
import re
from array import array
from collections.abc import Container, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate, chain, repeat
from operator import is_
from typing import Any

import msgspec
import polars as pl
import pyarrow as pa
from msgspec.structs import astuple

from schemas.cloudtrail import (
    DEDUP_COLUMN,
    EVENTS,
    UNMAPPED,
    ArrayOf,
    FieldType,
    Struct,
    TableSchema,
    Text,
)
from transforms.errors import Problem
from transforms.native import is_utf8 as native_is_utf8
from transforms.native import native_available, new_scanner, scanned_frame

_NULL = b"null"
_NULL_RAW = msgspec.Raw(_NULL)


# --- The typed decoder, generated from the schema -------------------------------------


def _as_raw_text(field_type: FieldType) -> bool:
    """Decoded as raw bytes and shown as JSON text: payloads, and booleans kept as text."""
    return not isinstance(field_type, Struct | ArrayOf) and not (
        isinstance(field_type, Text) and field_type.json_kind == "string"
    )


@cache
def _struct_class(struct: Struct, name: str, *, strict: bool = True) -> type[msgspec.Struct]:
    """The Struct a JSON object of ``struct`` decodes into.

    ``strict``: a field the schema does not know fails the decode (so the record takes
    a path that keeps it); otherwise such fields are skipped (whoever decodes leniently
    finds them another way).
    """
    members = [
        (f.name, _decoded_type(f.type, f"{name}_{f.name}", strict=strict), None)
        for f in struct.fields
    ]
    return msgspec.defstruct(
        name if strict else f"Lenient{name}",
        members,
        rename={f.name: f.key for f in struct.fields if f.key is not None},
        forbid_unknown_fields=strict,
        gc=False,  # Millions of these are alive at once; the cycle collector need not track them.
    )


def _is_boolean_text(field_type: FieldType) -> bool:
    """A STRING column where CloudTrail writes JSON booleans (``readOnly``)."""
    return isinstance(field_type, Text) and field_type.json_kind == "boolean"


def _decoded_type(field_type: FieldType, name: str, *, strict: bool) -> Any:
    if _is_boolean_text(field_type):
        return bool | None  # Any other JSON type takes the careful path, which keeps its text.
    if isinstance(field_type, Struct):
        return _struct_class(field_type, name, strict=strict) | None
    if isinstance(field_type, ArrayOf):
        return list[_struct_class(field_type.element, name, strict=strict)] | None  # type: ignore[misc]
    if _as_raw_text(field_type):
        return msgspec.Raw  # The exact bytes, including a literal null.
    return str | None


@dataclass(frozen=True)
class _Decoders:
    """The typed decoders of one table's records: a whole document, one record, and one
    record that may have fields the schema does not know."""

    document: Any
    record: Any
    lenient_record: Any


@cache
def _decoders(schema: TableSchema) -> _Decoders:
    name = f"{schema.name.title()}Record"
    record: Any = _struct_class(schema.root, name)
    document = msgspec.defstruct(
        f"{schema.name.title()}Document", [("Records", list[record])], gc=False
    )
    return _Decoders(
        msgspec.json.Decoder(document).decode,
        msgspec.json.Decoder(record).decode,
        msgspec.json.Decoder(_struct_class(schema.root, name, strict=False)).decode,
    )


_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_object_or_null = msgspec.json.Decoder(dict[str, msgspec.Raw] | None).decode
_decode_objects_or_null = msgspec.json.Decoder(list[dict[str, msgspec.Raw] | None] | None).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_string = msgspec.json.Decoder(str).decode
_encode = msgspec.json.encode
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cycle collector while a batch is converted.

    With hundreds of thousands of rows alive, every container created triggers
    collections that rescan them all: measured 3x slower columns with it on.
    Nothing here makes reference cycles, so pausing it loses nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def is_utf8(data: bytes | msgspec.Raw) -> bool:
    """msgspec checks the strings it decodes, not the bytes inside a raw span: we do."""
    if native_available():  # one pass, 16 ASCII bytes at a time, a document's without the GIL
        return native_is_utf8(data)
    if isinstance(data, bytes) and data.isascii():  # CloudTrail nearly always is; vectorised
        return True
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- Reading records -------------------------------------------------------------------


CHUNK_ROWS = 2048
"""Decoded rows become Arrow columns this many at a time, while they are still in the
CPU's cache: turning 100,000 rows into columns at once was 2.5x slower, every column
pass striding across hundreds of MB of Python objects."""


@dataclass
class RecordRows:
    """Decoded records of one or more objects, row-aligned, ready to become a frame.

    Rows are turned into columns a chunk at a time as they arrive (``chunks``); only
    the newest rows wait as Python objects (``rows``, ``unmapped``).
    """

    schema: TableSchema = EVENTS
    rows: list[Any] = field(default_factory=list)
    unmapped: list[str | None] = field(default_factory=list)
    chunks: list[pl.DataFrame] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    """Per row: index of its object in ``keys``."""
    positions: list[int] = field(default_factory=list)
    """Per row: the record's index within its object."""
    keys: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    scanner: Any = field(init=False, repr=False, compare=False)
    """The native scanner holding the newest rows as Arrow buffers, or None (pure Python).
    Only one of it and ``rows`` holds rows at a time, so chunks stay in record order."""

    def __post_init__(self) -> None:
        self.scanner = new_scanner(self.schema)

    def __len__(self) -> int:
        return len(self.origins)


def _chunk_if_full(records: RecordRows) -> None:
    if len(records.rows) >= CHUNK_ROWS:
        _chunk_rows(records)


def _chunk_rows(records: RecordRows) -> None:
    if records.rows:
        records.chunks.append(_rows_to_frame(records))
        records.rows, records.unmapped = [], []


SCANNED_CHUNK_ROWS = 65_536
SCANNED_CHUNK_BYTES = 256 << 20
"""The scanner's rows become a frame at most this many rows or string bytes in one column
(its buffers are compact: no cache to fit, only memory to bound)."""


def _chunk_scanned(records: RecordRows) -> None:
    if records.scanner is not None and records.scanner.rows:
        records.chunks.append(scanned_frame(records.scanner, records.schema))


def read_document(
    document: bytes, key: str, into: RecordRows, *, utf8_checked: bool = False
) -> bool:
    """Decode a well-formed document in one typed pass; False if it needs the careful path.

    ``utf8_checked``: the caller has already found the document valid UTF-8.
    """
    if not (utf8_checked or is_utf8(document)):
        return False
    if into.scanner is not None and _scan_document(document, key, into):
        return True
    _chunk_scanned(into)
    try:
        with collector_paused():
            records = _decoders(into.schema).document(document).Records
    except _UNREADABLE:
        return False
    origin = len(into.keys)
    into.keys.append(key)
    into.rows.extend(records)
    into.unmapped.extend([None] * len(records))
    into.origins.extend([origin] * len(records))
    into.positions.extend(range(len(records)))
    _chunk_if_full(into)
    return True


def _scan_document(document: bytes, key: str, into: RecordRows) -> bool:
    """Read a UTF-8 document with the native scanner; False (nothing kept) if it declines."""
    _chunk_rows(into)
    problems_before = len(into.problems)
    not_rows: set[int] = set()
    decoders = _decoders(into.schema)

    def fallback(span: bytes, position: int) -> tuple[bytes, str | None] | None:
        row = _read_span(msgspec.Raw(span), position, key, into, decoders)
        if row is None:
            not_rows.add(position)
            return None
        return _encode(row[0]), row[1]

    with collector_paused():
        count = into.scanner.add(document, fallback)
    if count is None:  # not valid JSON as far as the scanner can vouch: msgspec decides
        del into.problems[problems_before:]
        return False
    origin = len(into.keys)
    into.keys.append(key)
    positions = [p for p in range(count) if p not in not_rows] if not_rows else range(count)
    into.origins.extend([origin] * len(positions))
    into.positions.extend(positions)
    if into.scanner.rows >= SCANNED_CHUNK_ROWS or into.scanner.data_bytes >= SCANNED_CHUNK_BYTES:
        _chunk_scanned(into)
    return True


def read_records(
    spans: Sequence[msgspec.Raw],
    key: str,
    into: RecordRows,
    only: Container[int] | None = None,
    *,
    utf8_checked: bool = False,
) -> None:
    """Decode record spans one by one: typed when possible, carefully otherwise.

    ``only``: the positions to read (a re-drive of the records an earlier run could
    not convert); the others are skipped. Positions always count every span.
    ``utf8_checked``: the spans come from a document already known to be valid UTF-8.
    """
    _chunk_scanned(into)
    origin = len(into.keys)
    into.keys.append(key)
    decoders = _decoders(into.schema)
    with collector_paused():
        for position, span in enumerate(spans):
            if only is not None and position not in only:
                continue
            if not (utf8_checked or is_utf8(span)):
                event_id = _event_id_in(span, into.schema)
                into.problems.append(Problem(key, _NOT_UTF8, position, event_id))
                continue
            row = _read_span(span, position, key, into, decoders)
            if row is None:
                continue
            into.rows.append(row[0])
            into.unmapped.append(row[1])
            into.origins.append(origin)
            into.positions.append(position)
        _chunk_if_full(into)


def _read_span(
    span: msgspec.Raw, position: int, key: str, into: RecordRows, decoders: _Decoders
) -> tuple[Any, str | None] | None:
    """One record's row and unmapped text: typed when possible, carefully otherwise; None
    (and a problem) when it is not a record."""
    try:
        try:
            return decoders.record(span), None
        except _UNREADABLE:
            return _decode_with_unknown_fields(span, into.schema, decoders)
    except _NotARecordError as error:
        into.problems.append(Problem(key, str(error), position, _event_id_in(span, into.schema)))
        return None


class _NotARecordError(ValueError):
    pass


def _event_id_in(span: msgspec.Raw, schema: TableSchema) -> str | None:
    """The eventID of a record that could not be decoded, if it can still be seen in it."""
    pattern = _event_id_pattern(schema)
    match = None if pattern is None else pattern.search(bytes(span))
    if match is None:
        return None
    try:
        return match[1].decode("utf-8")
    except UnicodeDecodeError:
        return None


@cache
def _event_id_pattern(schema: TableSchema) -> re.Pattern[bytes] | None:
    keys = [f.key for f in schema.root.fields if f.name == DEDUP_COLUMN and f.key]
    if not keys:
        return None
    return re.compile(b'"' + re.escape(keys[0].encode()) + rb'"\s*:\s*"([^"\\]{1,256})"')


def _decode_with_unknown_fields(
    span: msgspec.Raw, schema: TableSchema, decoders: _Decoders
) -> tuple[Any, str | None]:
    """A record the strict decoder refused: typed if only unknown fields were in the way.

    Most such records are CloudTrail adding a field: the lenient decoder maps every
    known one in a single pass, and only the objects' keys are walked to find what it
    skipped (10x cheaper than coercing each value). A value of an unexpected type
    still needs the careful path.
    """
    try:
        row = decoders.lenient_record(span)
        rest = _unknown_members(_decode_object(span), schema.root)
    except _UNREADABLE:
        return _decode_carefully(span, schema)
    return row, None if rest is None else _encode(rest).decode()


def _unknown_members(members: dict[str, msgspec.Raw], struct: Struct) -> dict[str, Any] | None:
    """The members the schema does not know, nested as in the record (as the careful path)."""
    known = _fields_by_key(struct)
    rest: dict[str, Any] = {}
    for key, raw in members.items():
        member = known.get(key)
        if member is None:
            rest[key] = raw
        elif isinstance(member.type, Struct):
            inner = _decode_object_or_null(raw)
            unknown = None if inner is None else _unknown_members(inner, member.type)
            if unknown is not None:
                rest[key] = unknown
        elif isinstance(member.type, ArrayOf):
            element = member.type.element
            elements = _decode_objects_or_null(raw) or []
            # As on the careful path: an element with unknown fields keeps the whole array.
            if any(e is not None and _unknown_members(e, element) for e in elements):
                rest[key] = raw
    return rest or None


def _decode_carefully(span: msgspec.Raw, schema: TableSchema) -> tuple[Any, str | None]:
    """Map what the schema knows; return the rest as a JSON object mirroring the record."""
    try:
        top = _decode_object(span)
        row, rest = _coerce_struct(top, schema.root, f"{schema.name.title()}Record")
        return row, None if rest is None else _encode(rest).decode()
    except msgspec.ValidationError:
        raise _NotARecordError("record is not a JSON object") from None
    except msgspec.DecodeError as error:
        raise _NotARecordError(f"record is not valid JSON ({error})") from None
    except UnicodeDecodeError:
        raise _NotARecordError(_NOT_UTF8) from None
    except RecursionError:
        raise _NotARecordError(_TOO_DEEP) from None


_NOT_UTF8 = "record is not valid UTF-8"
_TOO_DEEP = "record nests values too deeply to decode"


def _coerce_struct(
    members: dict[str, msgspec.Raw], struct: Struct, name: str
) -> tuple[Any, dict[str, Any] | None]:
    known = _fields_by_key(struct)
    values: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, raw in members.items():
        member = known.get(key)
        if member is None:
            rest[key] = raw
            continue
        value, unmapped = _coerce_value(raw, member.type, f"{name}_{member.name}")
        values[member.name] = value
        if unmapped is not None:
            rest[key] = unmapped
    return _struct_class(struct, name)(**values), rest or None


def _coerce_value(raw: msgspec.Raw, field_type: FieldType, name: str) -> tuple[Any, Any]:
    """(mapped value, unmapped remainder or None) of one member."""
    text = bytes(raw).strip()
    if isinstance(field_type, Struct):
        if text[:1] == b"{":
            return _coerce_struct(_decode_object(text), field_type, name)
        return None, (None if text == _NULL else raw)
    if isinstance(field_type, ArrayOf):
        if text[:1] != b"[":
            return None, (None if text == _NULL else raw)
        elements: list[Any] = []
        complete = True
        for item in _decode_array(text):
            item_text = bytes(item).strip()
            if item_text[:1] == b"{":
                element, unmapped = _coerce_struct(
                    _decode_object(item_text), field_type.element, name
                )
                complete = complete and unmapped is None
            else:
                element, complete = None, complete and item_text == _NULL
            elements.append(element)
        # Lists have no keys to mirror: an element we could not map keeps the whole array.
        return elements, (None if complete else raw)
    value: bool | msgspec.Raw | str | None
    if _is_boolean_text(field_type) and text in _BOOLEANS:
        value = text == b"true"
    elif _as_raw_text(field_type):
        value = msgspec.Raw(text)
    else:
        value = _text_of_json(text)
    return value, None


_BOOLEANS = (b"true", b"false")


@cache
def _fields_by_key(struct: Struct) -> dict[str, Any]:
    return {f.key: f for f in struct.fields if f.key is not None}


def _text_of_json(text: bytes) -> str | None:
    """A JSON value as a STRING column shows it: strings unquoted, the rest as written."""
    if text == _NULL:
        return None
    if text[:1] == b'"':
        return _decode_string(text)
    return text.decode("utf-8")


# --- Rows -> columns -------------------------------------------------------------------


def rows_to_frame(records: RecordRows) -> pl.DataFrame:
    """The schema's record columns, plus ``unmapped``, from decoded rows."""
    with collector_paused():
        _chunk_scanned(records)
        if not records.chunks:
            return _rows_to_frame(records)
        tail = [_rows_to_frame(records)] if records.rows else []
        return pl.concat(records.chunks + tail, how="vertical", rechunk=False)


def _rows_to_frame(records: RecordRows) -> pl.DataFrame:
    fields = records.schema.record_fields
    transposed = zip(*map(astuple, records.rows), strict=True) if records.rows else None
    columns = {f.name: _column(f.type, next(transposed) if transposed else ()) for f in fields}
    columns[UNMAPPED.name] = pa.array(records.unmapped, pa.string_view())
    frame = pl.from_arrow(pa.table(columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _column(field_type: FieldType, values: Sequence[Any]) -> pa.Array:
    # Null checks by identity, in C (``None in values`` would call __eq__ on every string).
    if all(map(is_, values, repeat(None))):  # common: many nested objects are absent
        return pa.nulls(len(values), _arrow_type(field_type))
    if isinstance(field_type, Struct):
        nulls = list(map(is_, values, repeat(None)))
        has_nulls = any(nulls)
        if has_nulls:
            absent = (None,) * len(field_type.fields)
            rows = [absent if v is None else astuple(v) for v in values]
        else:
            rows = list(map(astuple, values))
        members = list(zip(*rows, strict=True)) if rows else [()] * len(field_type.fields)
        return pa.StructArray.from_arrays(
            [_column(f.type, m) for f, m in zip(field_type.fields, members, strict=True)],
            names=[f.name for f in field_type.fields],
            mask=pa.array(nulls, pa.bool_()) if has_nulls else None,
        )
    if isinstance(field_type, ArrayOf):
        offsets = accumulate((0 if v is None else len(v) for v in values), initial=0)
        return pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()),
            _column(field_type.element, list(chain.from_iterable(v for v in values if v))),
            mask=pa.array([v is None for v in values], pa.bool_()),
        )
    if _is_boolean_text(field_type):
        return _boolean_text_column(values)
    if _as_raw_text(field_type):
        return _raw_text_column(values)
    # string_view is Polars' own layout: the frame takes these buffers without a copy.
    return pa.array(values, pa.string_view())


@cache
def _arrow_type(field_type: FieldType) -> pa.DataType:
    """The type ``_column`` builds for a field: text as string_view, nested as nested."""
    if isinstance(field_type, Struct):
        return pa.struct([(f.name, _arrow_type(f.type)) for f in field_type.fields])
    if isinstance(field_type, ArrayOf):
        return pa.list_(_arrow_type(field_type.element))
    return pa.string_view()


def _boolean_text_column(values: Sequence[bool | msgspec.Raw | None]) -> pa.Array:
    """JSON booleans as the raw table shows them (``true``/``false``); other values as text."""
    try:
        flags = pa.array(values, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a record's value of another JSON type
        return _raw_text_column(
            [_JSON_BOOLEAN[v] if v is True or v is False else v for v in values]
        )
    return flags.cast(pa.string()).cast(pa.string_view())


_JSON_BOOLEAN = {True: msgspec.Raw(b"true"), False: msgspec.Raw(b"false")}


def _raw_text_column(values: Sequence[msgspec.Raw | None]) -> pa.Array:
    """Raw JSON spans as a string column: one buffer, no per-value Python strings.

    ``null`` becomes NULL; a JSON string shows its value (rare: decoded one by one);
    everything else keeps its exact bytes.
    """
    import pyarrow.compute as pc  # noqa: PLC0415 - 50 ms of start-up: only when rows need it

    spans = [_NULL_RAW if v is None else v for v in values]
    offsets = array("q", accumulate(map(len, spans), initial=0))
    offsets_buffer, data_buffer = pa.py_buffer(offsets), pa.py_buffer(b"".join(spans))
    text = pa.LargeStringArray.from_buffers(len(spans), offsets_buffer, data_buffer)
    # The spans that are a literal null become NULL through the validity bitmap: no copy.
    # (``present`` is a fresh array without nulls or offset: its bits are a bitmap as is.)
    present = pc.invert(pc.equal(text, "null"))
    text = pa.LargeStringArray.from_buffers(
        len(spans), offsets_buffer, data_buffer, present.buffers()[1]
    )
    quoted = pc.starts_with(text, '"')
    if pc.any(quoted).as_py():
        strings = text.to_pylist()
        for index in pc.indices_nonzero(quoted).to_pylist():
            strings[index] = _decode_string(strings[index].encode())
        text = pa.array(strings, pa.large_string())
    return text.cast(pa.string_view())
