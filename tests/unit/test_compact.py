"""Cutting a partition into time windows, and making one window one clean file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import polars as pl

from transforms.compact import compact_window, time_windows

T0 = datetime(2024, 1, 5, tzinfo=UTC)


def stamps(*seconds: int) -> pl.Series:
    return pl.Series("eventtimestamp", [T0 + timedelta(seconds=s) for s in seconds])


def test_windows_hold_about_the_target_rows_and_cover_everything():
    windows = time_windows(stamps(*range(10)), rows_per_window=3)
    assert [(s - T0).seconds for s, _ in windows] == [0, 3, 6, 9]
    assert windows[-1][1] is None
    assert all(end == nxt for (_, end), (nxt, _) in itertools.pairwise(windows))


def test_copies_of_one_event_time_never_straddle_two_windows():
    windows = time_windows(stamps(0, 1, 1, 1, 1, 2), rows_per_window=2)
    starts = [(s - T0).seconds for s, _ in windows]
    assert starts == [0, 1, 2]  # the four rows of second 1 stay together


def test_no_rows_no_windows():
    assert time_windows(stamps(), rows_per_window=5) == []


def test_a_window_is_sorted_and_each_event_id_once_but_id_less_rows_stay():
    frame = pl.DataFrame(
        {
            "eventid": ["b", "a", None, "b", None],
            "eventtimestamp": [T0 + timedelta(seconds=s) for s in (3, 1, 2, 3, 0)],
        }
    )
    unique, dropped = compact_window(frame)
    assert unique["eventid"].to_list() == [None, "a", None, "b"]
    assert dropped == 1
