"""Query results as text: an aligned table for people, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa

MAX_CELL = 80
"""Widest cell in the aligned table; CSV and JSON are never cut."""


def _plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO text, nested values as they are."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    plain = _plain(value)
    if isinstance(plain, dict | list):
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False)
    return str(plain)


def rows_as_json(table: pa.Table) -> list[dict[str, Any]]:
    return [_plain(row) for row in table.to_pylist()]


def render_table(table: pa.Table) -> str:
    names = table.column_names
    rows = [[_cell(v)[:MAX_CELL] for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = [
        " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_csv(table: pa.Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows([_cell(v) for v in row.values()] for row in table.to_pylist())
    return buffer.getvalue()


def render_json_lines(table: pa.Table) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows_as_json(table))
