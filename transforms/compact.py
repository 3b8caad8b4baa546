"""Compaction, the pure part: cut a partition into time windows, make each window one file.

Athena is slow on many small files. A closed day's partition is rewritten into
files of a target size, each holding a disjoint event-time window, sorted, with
each eventID once. Windows are cut on timestamp values, so every copy of a
redelivered event (same eventTime) falls into the same window and meets its twin.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pyarrow.compute as pc

from schemas.cloudtrail import DEDUP_COLUMN, SORT_COLUMN

Window = tuple[datetime, datetime | None]
"""[start, end) of event times; end None means open-ended (the last window)."""


def time_windows(timestamps: pl.Series, rows_per_window: int) -> list[Window]:
    """Windows of about ``rows_per_window`` rows each, cut between distinct timestamps."""
    if timestamps.is_empty():
        return []
    counts = timestamps.drop_nulls().to_frame("t").group_by("t").len().sort("t")
    starts: list[datetime] = [counts["t"][0]]
    filled = 0
    for moment, rows in counts.iter_rows():
        if filled and filled + rows > rows_per_window:
            starts.append(moment)
            filled = 0
        filled += rows
    ends: list[datetime | None] = [*starts[1:], None]
    return list(zip(starts, ends, strict=True))


def in_window(window: Window) -> pc.Expression:
    """The predicate selecting a window's rows (pushed down to Parquet statistics)."""
    start, end = window
    selected = pc.field(SORT_COLUMN) >= start
    return selected if end is None else selected & (pc.field(SORT_COLUMN) < end)


def compact_window(events: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """A window's events sorted by time, each eventID once; and how many copies were dropped."""
    unique = events.filter(
        pl.col(DEDUP_COLUMN).is_null() | pl.col(DEDUP_COLUMN).is_first_distinct()
    ).sort(SORT_COLUMN, maintain_order=True)
    return unique, events.height - unique.height
