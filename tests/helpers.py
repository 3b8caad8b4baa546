"""Checks shared by the tests: does an output row keep every value of its input record?"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from schemas.cloudtrail import RECORD_FIELDS, ArrayOf, Field, JsonText, Struct, Text

_MISSING = object()


def as_text(value: Any) -> str | None:
    """How a STRING column renders a JSON value (strings unquoted; the rest as JSON text)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def same_text(column: str | None, value: Any) -> bool:
    """A column shows ``value``: equal text for strings, equal JSON for the rest."""
    if value is None or isinstance(value, str):
        return column == value
    return column is not None and same_json(json.loads(column), value)


def same_json(got: Any, want: Any) -> bool:
    """Equal JSON values of the same JSON types: unlike ``==``, ``true`` is not ``1`` and
    ``1`` is not ``1.0`` (a number re-rendered as a boolean, or an int as a float, is a bug)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same_json(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(map(same_json, got, want))
    return bool(got == want)


def assert_row_preserves(record: dict[str, Any], row: dict[str, Any]) -> None:
    """Every value of ``record`` is in ``row``: in its column, or in ``unmapped``; none invented."""
    unmapped = json.loads(row["unmapped"]) if row.get("unmapped") else {}
    _check_object(record, row, unmapped, RECORD_FIELDS, path="")


def _check_object(
    obj: dict[str, Any],
    columns: dict[str, Any],
    unmapped: dict[str, Any],
    fields: tuple[Field, ...],
    path: str,
) -> None:
    known = {f.key: f for f in fields}
    for key, value in obj.items():
        where = f"{path}.{key}" if path else key
        field = known.get(key)
        if field is None:
            assert key in unmapped, f"{where}: unknown field lost (unmapped={unmapped})"
            assert same_json(unmapped[key], value), f"{where}: unmapped value differs"
            continue
        column = columns.get(field.name)
        rest = unmapped.get(key, _MISSING)
        if isinstance(field.type, Text | JsonText):
            assert same_text(column, value), f"{where}: column {column!r} != input {value!r}"
        elif isinstance(field.type, Struct):
            if isinstance(value, dict):
                assert column is not None, f"{where}: object became NULL"
                _check_object(
                    value, column, {} if rest is _MISSING else rest, field.type.fields, where
                )
            elif value is None:
                assert column is None, f"{where}: null became {column!r}"
            else:
                assert column is None and same_json(rest, value), f"{where}: non-object value lost"
        elif isinstance(field.type, ArrayOf):
            if isinstance(value, list) and rest is _MISSING:
                assert column is not None and len(column) == len(value), f"{where}: length"
                for index, (item, out) in enumerate(zip(value, column, strict=True)):
                    if item is None:
                        assert out is None, f"{where}[{index}]: null element became {out!r}"
                    else:
                        _check_object(item, out, {}, field.type.element.fields, f"{where}[{index}]")
            elif value is None:
                assert column is None, f"{where}: null became {column!r}"
            else:
                assert same_json(rest, value), f"{where}: array kept whole in unmapped"
    # Nothing invented: a non-null column needs an input key.
    for field in fields:
        if field.key is not None and field.key not in obj and columns.get(field.name) is not None:
            raise AssertionError(f"{path}.{field.key}: column has a value with no input key")


def read_table(events_root: Path) -> pl.DataFrame:
    """All rows of the events table with their partition columns (from the paths)."""
    files = sorted(events_root.rglob("*.parquet"))
    frames = []
    for file in files:
        parts = dict(p.split("=", 1) for p in file.relative_to(events_root).parent.parts)
        frame = pl.from_arrow(pq.read_table(file))
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame.with_columns(pl.lit(v).alias(k) for k, v in parts.items()))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()


def records_of(path: Path) -> list[dict[str, Any]]:
    """The records of a gzip CloudTrail log object."""
    records: list[dict[str, Any]] = json.loads(gzip.decompress(path.read_bytes()))["Records"]
    return records


def json_values_strategy(*, text: int, keys: int, width: int, leaves: int) -> Any:
    """Hypothesis strategy for any JSON value (no NaN/inf), of bounded size."""
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=width)
            | st.dictionaries(st.text(max_size=keys), inner, max_size=width)
        ),
        max_leaves=leaves,
    )
