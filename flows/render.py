"""Query results as text: an aligned table for people, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa

MAX_CELL = 80
"""Widest cell in the aligned table by default; CSV and JSON are never cut."""
CUT = "…"
"""Ends a value cut to fit its column, so a cut value never passes for a whole one."""


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


def fit(text: str, max_width: int) -> str:
    """``text`` in at most ``max_width`` characters, ending in ``…`` if cut (0: never cut)."""
    if max_width <= 0 or len(text) <= max_width:
        return text
    return text[: max_width - 1] + CUT


def cells_cut(table: pa.Table, max_width: int = MAX_CELL) -> int:
    """How many values ``render_table`` cuts at ``max_width``."""
    if max_width <= 0:
        return 0
    return sum(len(_cell(v)) > max_width for row in table.to_pylist() for v in row.values())


def render_table(table: pa.Table, max_width: int = MAX_CELL) -> str:
    """Rows aligned in columns for people; values longer than ``max_width`` cut with ``…``."""
    names = table.column_names
    rows = [[fit(_cell(v), max_width) for v in row.values()] for row in table.to_pylist()]
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
