"""The native scanner's side of decoding: the schema as its spec, its buffers as a frame.

``transforms._speedups`` (C, built by ``pip install`` when a compiler is found) walks
each document once and writes Arrow buffers (string views, validity bitmaps, list
offsets) for every column, payloads as their exact bytes: no Python object per
value; members the schema does not know go to ``unmapped`` as the Python path writes
them. It walks a document without the GIL, so batches in two threads parse on two
cores. Records it does not handle (a value of an unexpected type, an escaped or
repeated key) go to the careful Python path one by one (see ``transforms.records``).
Without the extension, or with ``CTPARQUET_PURE_PYTHON=1``, everything decodes
through msgspec; a test checks that both write the same table.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import polars as pl
import pyarrow as pa

from schemas.cloudtrail import UNMAPPED, ArrayOf, FieldType, Struct, TableSchema, Text

try:
    from transforms import _speedups  # type: ignore[attr-defined]
except ImportError:  # no compiler at install: the pure-Python path
    _speedups = None

PURE_PYTHON_ENV = "CTPARQUET_PURE_PYTHON"


def native_built() -> bool:
    """The native scanner was compiled at install (a C compiler was found)."""
    return _speedups is not None


def native_available() -> bool:
    """The native scanner is built and not switched off (``CTPARQUET_PURE_PYTHON=1``)."""
    return _speedups is not None and os.environ.get(PURE_PYTHON_ENV, "") in ("", "0")


def is_utf8(data: Any) -> bool:
    """Whether ``str(data, "utf-8")`` would succeed, found without making the str (the
    native scanner must be built: see ``native_available``)."""
    valid: bool = _speedups.is_utf8(data)
    return valid


def new_scanner(schema: TableSchema) -> Any | None:
    """A scanner of ``schema``'s records, or None where only the Python path is available.

    Its buffers start at the sizes the last chunk of this schema needed (a batch makes a
    new scanner: growing each buffer from 1 KiB again cost ~8% of a run in copies).
    A scanner is used by one thread at a time.
    """
    if not native_available():
        return None
    return _speedups.Scanner(_spec(schema.root), _capacities.get(schema.name))


_capacities: dict[str, bytes] = {}
"""Per schema: the buffer capacities its last finished chunk needed (any thread's)."""


@cache
def _spec(field_type: FieldType) -> tuple[Any, ...]:
    """What the scanner needs of a field: text (decoded string), raw (exact JSON), nesting."""
    if isinstance(field_type, Struct):
        return ("struct", tuple((f.key, _spec(f.type)) for f in field_type.fields))
    if isinstance(field_type, ArrayOf):
        return ("list", _spec(field_type.element))
    if isinstance(field_type, Text) and field_type.json_kind == "string":
        return ("text",)
    return ("raw",)  # payloads, and booleans kept as text ('true'/'false' are their own text)


def scanned_frame(scanner: Any, schema: TableSchema) -> pl.DataFrame:
    """The scanner's rows as a frame of the record columns plus ``unmapped``; empties it."""
    (_, _, _, columns), unmapped = scanner.finish()
    _capacities[schema.name] = scanner.capacities
    arrays = {
        f.name: _array(out, f.type) for f, out in zip(schema.record_fields, columns, strict=True)
    }
    arrays[UNMAPPED.name] = _array(unmapped, UNMAPPED.type)
    frame = pl.from_arrow(pa.table(arrays))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _array(out: tuple[Any, ...], field_type: FieldType) -> pa.Array:
    length, nulls, validity = out[0], out[1], out[2]
    bitmap = None if validity is None else pa.py_buffer(validity)
    if isinstance(field_type, Struct):
        children = [_array(c, f.type) for c, f in zip(out[3], field_type.fields, strict=True)]
        kind = pa.struct(
            [(f.name, c.type) for f, c in zip(field_type.fields, children, strict=True)]
        )
        return pa.Array.from_buffers(kind, length, [bitmap], nulls, children=children)
    if isinstance(field_type, ArrayOf):
        element = _array(out[4], field_type.element)
        return pa.Array.from_buffers(
            pa.list_(element.type), length, [bitmap, pa.py_buffer(out[3])], nulls,
            children=[element],
        )  # fmt: skip
    views, data = pa.py_buffer(out[3]), pa.py_buffer(out[4])
    return pa.Array.from_buffers(pa.string_view(), length, [bitmap, views, data], nulls)
