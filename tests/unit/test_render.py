"""Query results as text: an aligned table marks every value it cuts; CSV and JSON stay whole."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest

from flows.render import CUT, MAX_CELL, cells_cut, fit, render_csv, render_json_lines, render_table

LONG = (
    "arn:aws:sts::123456789012:assumed-role/"
    "AWSReservedSSO_AdministratorAccess_0123456789/frank@example.com"
)


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("abcdef", 10, "abcdef"),
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcde…"),
        ("abcdefg", 1, "…"),
        ("abcdefg", 0, "abcdefg"),  # 0: never cut
        ("", 3, ""),
    ],
)
def test_fit_cuts_to_the_width_and_marks_the_cut(text, width, shown):
    assert fit(text, width) == shown
    assert len(fit(text, width)) == (len(text) if width == 0 else min(len(text), width))


def table() -> pa.Table:
    return pa.table({"arn": [LONG, "short", None], "n": [1, 22, 333]})


def test_the_aligned_table_cuts_long_values_with_a_mark_at_the_default_width():
    lines = render_table(table()).splitlines()
    assert lines[0].split("|")[0].strip() == "arn"
    first = lines[2].split(" | ")[0]
    assert len(first) == MAX_CELL and first.endswith(CUT)
    assert LONG.startswith(first[:-1])
    assert lines[3].startswith("short ")
    assert cells_cut(table()) == 1


def test_max_width_sets_the_cut_and_zero_shows_values_whole():
    narrow = render_table(table(), max_width=10).splitlines()
    assert narrow[2].startswith("arn:aws:s… | 1")
    assert cells_cut(table(), 10) == 1
    assert cells_cut(table(), 3) == 2  # "short" too; numbers are 3 wide at most
    whole = render_table(table(), max_width=0)
    assert LONG in whole and CUT not in whole
    assert cells_cut(table(), 0) == 0


def test_csv_and_json_lines_are_never_cut():
    rows = list(csv.reader(io.StringIO(render_csv(table()))))
    assert rows[1] == [LONG, "1"]
    first = json.loads(render_json_lines(table()).splitlines()[0])
    assert first == {"arn": LONG, "n": 1}
