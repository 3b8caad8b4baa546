"""Compaction: rewrite each closed day's small files into few large, sorted, unique files.

Per partition: read only the timestamps to cut event-time windows of about the
target size, then for each window read its rows (Parquet statistics skip the
rest), drop repeated eventIDs, sort, write. Memory stays bounded by the window,
not the partition. New files are complete and in place before the old ones are
deleted, so a reader never misses a row (one racing the swap may briefly see a
row twice; see docs/adr/0005-compaction.md). A partition already made only of
compacted files is left alone, so a rerun changes nothing.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow.dataset as ds
from prefect import flow, get_run_logger

from flows.batch import EVENTS_FOLDER
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import SORT_COLUMN
from transforms.compact import Window, compact_window, in_window, time_windows, window_parts
from transforms.errors import PipelineError
from transforms.parquet import (
    COMPACTED_ZSTD_LEVEL,
    DEFAULT_ROW_GROUP_ROWS,
    batch_id,
    parquet_rows,
    streamed_parquet,
)

log = logging.getLogger(__name__)

COMPACTED_PREFIX = "compacted-"
MIN_TARGET_MB, MAX_TARGET_MB, DEFAULT_TARGET_MB = 1, 512, 128


class CompactionError(PipelineError):
    """A partition could not be compacted; it is left as it was."""


@dataclass
class CompactionSummary:
    events_table: str
    before: str
    partitions_seen: int = 0
    partitions_compacted: int = 0
    partitions_skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        found = {k: v for k, v in self.__dict__.items() if k != "partitions_skipped"}
        found["partitions_skipped"] = dict(sorted(self.partitions_skipped.items()))
        found["problems_count"] = len(self.problems)
        found["seconds"] = round(self.seconds, 3)
        return found


def closed_before(today: date) -> date:
    """The first day still open: CloudTrail delivers up to a day late, so today and
    yesterday may still receive events."""
    return today - timedelta(days=1)


def run_compact(
    dest_url: str,
    *,
    before: date | None = None,
    target_mb: int = DEFAULT_TARGET_MB,
    today: date | None = None,
) -> CompactionSummary:
    """Compact every partition of the events table under ``dest_url`` whose day is < before."""
    if not MIN_TARGET_MB <= target_mb <= MAX_TARGET_MB:
        raise CompactionError(f"target size {target_mb} MB is outside {MIN_TARGET_MB}..512 MB")
    started = time.perf_counter()
    dest = Storage(dest_url)
    before = before or closed_before(today or datetime.now(UTC).date())
    root = dest.path(EVENTS_FOLDER)
    summary = CompactionSummary(events_table=dest.url(root), before=before.isoformat())
    for folder, files in sorted(_partitions(dest, root).items()):
        summary.partitions_seen += 1
        day = _partition_day(folder)
        if day is None:
            summary.partitions_skipped["not_a_partition"] += 1
            continue
        if day >= before:
            summary.partitions_skipped["open_day"] += 1
            continue
        if all(posixpath.basename(f.path).startswith(COMPACTED_PREFIX) for f in files):
            summary.partitions_skipped["already_compacted"] += 1
            continue
        try:
            _compact_partition(dest, folder, files, target_mb * 1024 * 1024, summary)
        except (OSError, ValueError) as error:  # one partition's trouble never stops the run
            summary.problems.append({"key": dest.url(folder), "reason": str(error)})
    summary.seconds = time.perf_counter() - started
    return summary


def _partitions(dest: Storage, root: str) -> dict[str, list[StoredObject]]:
    found: dict[str, list[StoredObject]] = defaultdict(list)
    if dest.exists(root):
        for stored in dest.list_files(root):
            if stored.path.endswith(".parquet"):
                found[posixpath.dirname(stored.path)].append(stored)
    return found


def _partition_day(folder: str) -> date | None:
    parts = dict(p.split("=", 1) for p in folder.split("/")[-3:] if "=" in p)
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (KeyError, ValueError):
        return None


def _rows_in(timestamps: pl.Series, window: Window) -> int:
    return timestamps.to_frame().filter(in_window(window)).height


def _compact_partition(
    dest: Storage, folder: str, files: list[StoredObject], target_bytes: int, summary: Any
) -> None:
    dataset = ds.dataset([f.path for f in files], filesystem=dest.fs, format="parquet")
    timestamps = pl.from_arrow(dataset.to_table(columns=[SORT_COLUMN]).column(SORT_COLUMN))
    assert isinstance(timestamps, pl.Series)
    size = sum(f.size for f in files)
    rows_per_file = max(1, int(target_bytes / max(1.0, size / max(1, timestamps.len()))))
    name = batch_id(posixpath.basename(f.path) for f in files)
    events = pl.scan_pyarrow_dataset(dataset)  # window filters reach Parquet statistics
    written: list[str] = []
    for index, window in enumerate(time_windows(timestamps, rows_per_file)):
        # A window is read a part at a time, so memory does not grow with the target size.
        parts = (
            compact_window(events.filter(in_window(part))).collect()
            for part in window_parts(timestamps, window)
        )
        data = streamed_parquet(
            parts, row_group_rows=DEFAULT_ROW_GROUP_ROWS, zstd_level=COMPACTED_ZSTD_LEVEL
        )
        target = posixpath.join(folder, f"{COMPACTED_PREFIX}{name}-{index:04d}.parquet")
        dest.write_atomically(target, data)
        written.append(target)
        kept = parquet_rows(data)
        summary.events += kept
        summary.duplicates_dropped += _rows_in(timestamps, window) - kept
        summary.bytes_after += len(data)
    # Only now that every new file is complete and in place do the old ones go.
    for old in files:
        if old.path not in written:
            dest.remove(old.path)
    summary.partitions_compacted += 1
    summary.files_before += len(files)
    summary.files_after += len(written)
    summary.bytes_before += size
    log.info("compacted %s: %d files -> %d", folder, len(files), len(written))


@flow(name="cloudtrail-compact")
def compact(
    dest: str, before: str | None = None, target_mb: int = DEFAULT_TARGET_MB
) -> dict[str, Any]:
    """Compact the closed days of the events table under ``dest`` (scheduled daily)."""
    summary = run_compact(
        dest, before=date.fromisoformat(before) if before else None, target_mb=target_mb
    )
    get_run_logger().info(
        "compacted %d partitions: %d files -> %d, %d duplicates dropped",
        summary.partitions_compacted,
        summary.files_before,
        summary.files_after,
        summary.duplicates_dropped,
    )
    return summary.as_json()
