"""Cutting a partition into time windows, and making one window one clean file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import polars as pl

from transforms.compact import compact_window, in_window, time_windows, window_parts

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
    unique = compact_window(frame.lazy()).collect()
    assert unique["eventid"].to_list() == [None, "a", None, "b"]


def test_a_window_compacted_in_parts_is_the_window_compacted_whole():
    seconds = [5, 1, 1, 3, 3, 3, 9, 2, 7, 7, 0, 4, 8, 6, 6]
    frame = pl.DataFrame(
        {
            "eventid": [f"e{s}" if s % 3 else None for s in seconds],  # copies share a time
            "eventtimestamp": [T0 + timedelta(seconds=s) for s in seconds],
            "n": range(len(seconds)),
        }
    )
    window = (T0 + timedelta(seconds=1), T0 + timedelta(seconds=8))
    whole = compact_window(frame.lazy().filter(in_window(window))).collect()
    for part_rows in (1, 2, 4, 100):
        parts = window_parts(frame["eventtimestamp"], window, part_rows=part_rows)
        assert parts[0][0] == window[0]
        assert parts[-1][1] == window[1]
        compacted = [compact_window(frame.lazy().filter(in_window(p))).collect() for p in parts]
        assert pl.concat(compacted).equals(whole), part_rows
    assert whole["eventtimestamp"].is_sorted()
    assert whole.height == 10  # 12 rows in [1 s, 8 s), of which the second e1 and e7 drop
