"""Raw record spans -> a Polars frame of the schema's columns, with nothing lost.

Two decoders share one output. The fast one decodes a whole record into typed
msgspec Structs generated from the schema, free-form payloads arriving as
``msgspec.Raw`` (their exact bytes: no re-serialisation, so key order, escapes,
number forms and case-twin keys stay as written). It refuses any record with a
field the schema does not know or a value of an unexpected type; such a record
takes the careful path, which maps what it can and keeps the rest, byte for byte,
in the ``unmapped`` column.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Container, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import polars as pl
import pyarrow as pa

from schemas.cloudtrail import (
    DEDUP_COLUMN,
    EVENTS,
    UNMAPPED,
    ArrayOf,
    FieldType,
    Struct,
    TableSchema,
)
from schemas.derive import arrow_field, arrow_type
from transforms.errors import Problem

_NULL = b"null"


# --- The typed decoder, generated from the schema -------------------------------------


@cache
def _struct_class(struct: Struct, name: str) -> type[msgspec.Struct]:
    members = [(f.name, _decoded_type(f.type, f"{name}_{f.name}"), None) for f in struct.fields]
    return msgspec.defstruct(
        name,
        members,
        rename={f.name: f.key for f in struct.fields if f.key is not None},
        forbid_unknown_fields=True,
        gc=False,  # Millions of these are alive at once; the cycle collector need not track them.
    )


def _decoded_type(field_type: FieldType, name: str) -> Any:
    if isinstance(field_type, Struct):
        return _struct_class(field_type, name) | None
    if isinstance(field_type, ArrayOf):
        return list[_struct_class(field_type.element, name)] | None  # type: ignore[misc]
    if getattr(field_type, "json_kind", None) == "string":
        return str | None
    if getattr(field_type, "json_kind", None) == "boolean":
        return bool | None
    return msgspec.Raw  # JSON text: the exact bytes, including a literal null.


@dataclass(frozen=True)
class _Decoders:
    """The typed decoders of one table's records: a whole document, and one record."""

    document: Any
    record: Any


@cache
def _decoders(schema: TableSchema) -> _Decoders:
    record: Any = _struct_class(schema.root, f"{schema.name.title()}Record")
    document = msgspec.defstruct(
        f"{schema.name.title()}Document", [("Records", list[record])], gc=False
    )
    return _Decoders(msgspec.json.Decoder(document).decode, msgspec.json.Decoder(record).decode)


_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_string = msgspec.json.Decoder(str).decode
_encode = msgspec.json.encode
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector: it rescans every live object many times while decoding."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _is_utf8(data: bytes | msgspec.Raw) -> bool:
    """msgspec checks the strings it decodes, not the bytes inside a raw span: we do."""
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- Reading records -------------------------------------------------------------------


@dataclass
class RecordRows:
    """Decoded records of one or more objects, row-aligned, ready to become a frame."""

    schema: TableSchema = EVENTS
    rows: list[Any] = field(default_factory=list)
    unmapped: list[str | None] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    """Per row: index of its object in ``keys``."""
    positions: list[int] = field(default_factory=list)
    """Per row: the record's index within its object."""
    keys: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def read_document(document: bytes, key: str, into: RecordRows) -> bool:
    """Decode a well-formed document in one typed pass; False if it needs the careful path."""
    if not _is_utf8(document):
        return False
    try:
        with _collector_paused():
            records = _decoders(into.schema).document(document).Records
    except _UNREADABLE:
        return False
    origin = len(into.keys)
    into.keys.append(key)
    into.rows.extend(records)
    into.unmapped.extend([None] * len(records))
    into.origins.extend([origin] * len(records))
    into.positions.extend(range(len(records)))
    return True


def read_records(
    spans: Sequence[msgspec.Raw],
    key: str,
    into: RecordRows,
    only: Container[int] | None = None,
) -> None:
    """Decode record spans one by one: typed when possible, carefully otherwise.

    ``only``: the positions to read (a re-drive of the records an earlier run could
    not convert); the others are skipped. Positions always count every span.
    """
    origin = len(into.keys)
    into.keys.append(key)
    decode_record = _decoders(into.schema).record
    with _collector_paused():
        for position, span in enumerate(spans):
            if only is not None and position not in only:
                continue
            try:
                if not _is_utf8(span):
                    raise _NotARecordError(_NOT_UTF8)
                try:
                    row, unmapped = decode_record(span), None
                except _UNREADABLE:
                    row, unmapped = _decode_carefully(span, into.schema)
            except _NotARecordError as error:
                event_id = _event_id_in(span, into.schema)
                into.problems.append(Problem(key, str(error), position, event_id))
                continue
            into.rows.append(row)
            into.unmapped.append(unmapped)
            into.origins.append(origin)
            into.positions.append(position)


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
    return _text_of_json(text), None


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


def _as_text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, msgspec.Raw):
        return _text_of_json(bytes(value).strip())
    raise TypeError(f"unexpected decoded value {type(value).__name__}")


# --- Rows -> columns -------------------------------------------------------------------


def rows_to_frame(records: RecordRows) -> pl.DataFrame:
    """The schema's record columns, plus ``unmapped``, from decoded rows."""
    columns = {
        f.name: _column(f.type, [getattr(r, f.name) for r in records.rows])
        for f in records.schema.record_fields
    }
    columns[UNMAPPED.name] = pa.array(records.unmapped, pa.string())
    frame = pl.from_arrow(pa.table(columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _column(field_type: FieldType, values: list[Any]) -> pa.Array:
    if isinstance(field_type, Struct):
        children = [
            _column(child.type, [None if v is None else getattr(v, child.name) for v in values])
            for child in field_type.fields
        ]
        return pa.StructArray.from_arrays(
            children,
            fields=[arrow_field(child) for child in field_type.fields],
            mask=pa.array([v is None for v in values], pa.bool_()),
        )
    if isinstance(field_type, ArrayOf):
        offsets = [0]
        flat: list[Any] = []
        for value in values:
            if value is not None:
                flat.extend(value)
            offsets.append(len(flat))
        return pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()),
            _column(field_type.element, flat),
            type=arrow_type(field_type),
            mask=pa.array([v is None for v in values], pa.bool_()),
        )
    return pa.array(
        [v if v is None or v.__class__ is str else _as_text(v) for v in values], pa.string()
    )
