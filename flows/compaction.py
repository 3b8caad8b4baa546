"""Compaction: rewrite each closed day's small files into few large, sorted, unique files.

Both tables, events and Insights, by the same rules. Per partition, under its
lease (as ingest writes it): read only the timestamps to cut event-time windows of
about the target size. Then, for each window, read its rows (Parquet statistics
skip the rest), drop repeated eventIDs, sort, and stream the file out as it is
encoded, so memory does not grow with the target. New files are staged outside
the table and swapped in (``flows/swap.py``): a compaction that fails, or is
killed, never leaves a row twice, and the next run cleans up after a killed one.
A partition already made only of compacted files is left alone, so a rerun changes
nothing.

Only the days a run may compact are listed. One delimiter LIST finds a table's
regions, then one LIST per region starts at the first day not yet known to be
compacted (less a week, for events that arrive late), as recorded by the last run.
An explicit ``before`` sweeps every day before it.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import polars as pl
import pyarrow.dataset as ds

from flows.aws import summarise_requests
from flows.batch import EVENTS_FOLDER, INSIGHTS_FOLDER, SCHEMA_OF_TABLE
from flows.lock import Lease, LockTimeoutError, partition_lock
from flows.settings import Settings
from flows.storage import Storage, StoredObject
from flows.swap import Swap, find_unfinished, finish_unfinished
from schemas.cloudtrail import SORT_COLUMN
from transforms.compact import Window, compact_window, in_window, time_windows, window_parts
from transforms.errors import PipelineError
from transforms.parquet import (
    COMPACTED_PREFIX,
    COMPACTED_ZSTD_LEVEL,
    DEFAULT_ROW_GROUP_ROWS,
    batch_id,
    write_streamed_parquet,
)

log = logging.getLogger(__name__)

MIN_TARGET_MB, MAX_TARGET_MB, DEFAULT_TARGET_MB = 1, 512, 128
TABLES = (EVENTS_FOLDER, INSIGHTS_FOLDER)
PROGRESS_FOLDER = "_state/compaction"
RECHECK_DAYS = 7
"""Days before the last run's cut-off listed again: events that reach a day after it was
compacted (late deliveries, replication lag) are compacted by the next runs."""


class CompactionError(PipelineError):
    """A partition could not be compacted; it is left as it was."""


@dataclass
class CompactionSummary:
    events_table: str
    insights_table: str
    before: str
    listed_from: dict[str, str | None] = field(default_factory=dict)
    """Per table, the first day listed (None: every day)."""
    partitions_seen: int = 0
    partitions_compacted: int = 0
    partitions_by_table: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    partitions_skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    partitions_busy: list[str] = field(default_factory=list)
    """Partitions whose lease another writer held past the lock wait: left for the next run."""
    unfinished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Attempts of killed runs found and dealt with: rolled_forward or removed."""
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    swap_seconds_max: float = 0.0
    problems: list[dict[str, str]] = field(default_factory=list)
    requests: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        found = dict(self.__dict__)
        for name in ("partitions_skipped", "partitions_by_table", "unfinished"):
            found[name] = dict(sorted(found[name].items()))
        found["problems_count"] = len(self.problems)
        found["seconds"] = round(self.seconds, 3)
        found["swap_seconds_max"] = round(self.swap_seconds_max, 4)
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
    settings: Settings | None = None,
) -> CompactionSummary:
    """Compact the partitions of both tables under ``dest_url`` whose day is < before.

    Without ``before``: the closed days since the last run's cut-off (less
    ``RECHECK_DAYS``); with it, every day before it.
    """
    if not MIN_TARGET_MB <= target_mb <= MAX_TARGET_MB:
        raise CompactionError(f"target size {target_mb} MB is outside {MIN_TARGET_MB}..512 MB")
    started = time.perf_counter()
    dest = Storage(dest_url, settings=settings)
    closed = closed_before(today or datetime.now(UTC).date())
    cutoff = before or closed
    summary = CompactionSummary(
        events_table=dest.url(dest.path(EVENTS_FOLDER)),
        insights_table=dest.url(dest.path(INSIGHTS_FOLDER)),
        before=cutoff.isoformat(),
    )
    _finish_unfinished(dest, summary)
    job = _Job(dest, target_mb * 1024 * 1024, summary)
    for table in TABLES:
        since = None if before else _listed_from(dest, table)
        summary.listed_from[table] = since.isoformat() if since else None
        unfinished = _compact_table(job, table, since, cutoff)
        _record_progress(dest, table, min([cutoff, closed, *unfinished]))
    summary.requests = summarise_requests(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass(frozen=True)
class _Job:
    """What every partition of a run shares."""

    dest: Storage
    target_bytes: int
    summary: CompactionSummary


def _finish_unfinished(dest: Storage, summary: CompactionSummary) -> None:
    """Deal with what killed runs left, each under its partition's lease."""
    for leftover in find_unfinished(dest):
        try:
            with partition_lock(dest, f"{leftover.table}/{leftover.partition}", wait=0) as lease:
                summary.unfinished[finish_unfinished(dest, leftover, lease)] += 1
        except LockTimeoutError:
            pass  # a live compaction's own work, or left for the next run
        except (OSError, ValueError, PipelineError) as error:
            summary.problems.append({"key": dest.url(leftover.staging), "reason": str(error)})


def _compact_table(job: _Job, table: str, since: date | None, before: date) -> list[date]:
    """Compact one table's partitions in range; the days left unfinished (to list again)."""
    dest, summary = job.dest, job.summary
    unfinished: list[date] = []
    busy: list[tuple[str, date]] = []
    for folder, files in sorted(_partitions(dest, table, since).items()):
        summary.partitions_seen += 1
        day = _partition_day(folder)
        if day is None:
            summary.partitions_skipped["not_a_partition"] += 1
        elif day >= before:
            summary.partitions_skipped["open_day"] += 1
        elif _all_compacted(files):
            summary.partitions_skipped["already_compacted"] += 1
        elif (outcome := _compact_leased(job, table, folder, wait=0)) == "busy":
            busy.append((folder, day))
        elif outcome == "failed":
            unfinished.append(day)
    # Partitions another writer held: by now an ingest has usually written its batch.
    # Waiting (up to the lock-wait setting) beats leaving the day uncompacted until the
    # next run for a few seconds of overlap; only a writer holding on past that is skipped.
    for folder, day in busy:
        outcome = _compact_leased(job, table, folder, wait=None)
        if outcome == "busy":
            summary.partitions_skipped["busy"] += 1
            summary.partitions_busy.append(dest.url(folder))
        if outcome != "done":
            unfinished.append(day)
    return unfinished


def _partitions(dest: Storage, table: str, since: date | None) -> dict[str, list[StoredObject]]:
    """The files of each partition from ``since`` on (None: all), a LIST per region."""
    found: dict[str, list[StoredObject]] = defaultdict(list)
    for region in dest.list_dir(dest.path(table)).folders:
        first = None
        if since is not None:  # keys sort by day: start listing just before ``since``
            first = posixpath.join(region, f"year={since:%Y}/month={since:%m}/day={since:%d}")
        for stored in dest.list_after(region, first):
            if stored.path.endswith(".parquet"):
                found[posixpath.dirname(stored.path)].append(stored)
    return found


def _partition_day(folder: str) -> date | None:
    parts = dict(p.split("=", 1) for p in folder.split("/")[-3:] if "=" in p)
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (KeyError, ValueError):
        return None


def _all_compacted(files: list[StoredObject]) -> bool:
    return all(posixpath.basename(f.path).startswith(COMPACTED_PREFIX) for f in files)


def _compact_leased(
    job: _Job, table: str, folder: str, *, wait: float | None
) -> Literal["done", "busy", "failed"]:
    """Compact a partition under its lease (``wait``: for another writer to finish)."""
    dest, summary = job.dest, job.summary
    partition = posixpath.relpath(folder, dest.path(table))
    try:
        with partition_lock(dest, f"{table}/{partition}", wait=wait) as lease:
            # The files as they are now that nobody else writes them.
            files = [f for f in dest.list_dir(folder).files if f.path.endswith(".parquet")]
            if _all_compacted(files):
                summary.partitions_skipped["already_compacted"] += 1
            else:
                _compact_partition(job, table, folder, files, lease)
    except LockTimeoutError:
        return "busy"
    except (OSError, ValueError, PipelineError) as error:  # one partition never stops the run
        summary.problems.append({"key": dest.url(folder), "reason": str(error)})
        return "failed"
    return "done"


def _rows_in(timestamps: pl.Series, window: Window) -> int:
    return timestamps.to_frame().filter(in_window(window)).height


def _compact_partition(
    job: _Job, table: str, folder: str, files: list[StoredObject], lease: Lease
) -> None:
    dest, summary = job.dest, job.summary
    schema = SCHEMA_OF_TABLE[table]
    dataset = ds.dataset([f.path for f in files], filesystem=dest.fs, format="parquet")
    timestamps = pl.from_arrow(dataset.to_table(columns=[SORT_COLUMN]).column(SORT_COLUMN))
    assert isinstance(timestamps, pl.Series)
    size = sum(f.size for f in files)
    rows_per_file = max(1, int(job.target_bytes / max(1.0, size / max(1, timestamps.len()))))
    name = batch_id(posixpath.basename(f.path) for f in files)
    events = pl.scan_pyarrow_dataset(dataset)  # window filters reach Parquet statistics
    swap = Swap.begin(dest, table, posixpath.relpath(folder, dest.path(table)), files)
    try:
        for index, window in enumerate(time_windows(timestamps, rows_per_file)):
            final = posixpath.join(folder, f"{COMPACTED_PREFIX}{name}-{index:04d}.parquet")
            with dest.streaming_write(swap.stage(final)) as sink:
                kept = write_streamed_parquet(
                    _window_in_parts(events, timestamps, window, lease),
                    sink,
                    row_group_rows=DEFAULT_ROW_GROUP_ROWS,
                    schema=schema,
                    zstd_level=COMPACTED_ZSTD_LEVEL,
                )
                summary.bytes_after += sink.tell()
            summary.events += kept
            summary.duplicates_dropped += _rows_in(timestamps, window) - kept
        swap.commit(lease)
    except Exception as error:
        if not swap.abandon(error):  # only forward is right now: left to the next run
            raise CompactionError(
                f"compaction stopped in the middle of its swap ({error}); "
                "the next compaction finishes it"
            ) from error
        raise
    summary.swap_seconds_max = max(summary.swap_seconds_max, swap.seconds)
    summary.partitions_compacted += 1
    summary.partitions_by_table[table] += 1
    summary.files_before += len(files)
    summary.files_after += len(swap.new)
    summary.bytes_before += size
    log.info("compacted %s: %d files -> %d", folder, len(files), len(swap.new))


def _window_in_parts(
    events: pl.LazyFrame, timestamps: pl.Series, window: Window, lease: Lease
) -> Iterator[pl.DataFrame]:
    """A window's rows a part at a time (memory does not grow with the target size)."""
    for part in window_parts(timestamps, window):
        lease.keep()  # a partition can take longer than the lease: renewed as it goes
        yield compact_window(events.filter(in_window(part))).collect()


def _progress_path(dest: Storage, table: str) -> str:
    return dest.path(PROGRESS_FOLDER, f"progress-{table}.json")


def _listed_from(dest: Storage, table: str) -> date | None:
    """The first day to list: RECHECK_DAYS before the last run's cut-off (None: all)."""
    found = dest.read_versioned(_progress_path(dest, table))
    if found is None:
        return None
    try:
        cutoff = date.fromisoformat(json.loads(found[0])["compacted_before"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: list every day, as on a first run
    return cutoff - timedelta(days=RECHECK_DAYS)


def _record_progress(dest: Storage, table: str, compacted_before: date) -> None:
    """Every day before ``compacted_before`` is compacted (or was, when this run ended)."""
    body = json.dumps({"compacted_before": compacted_before.isoformat()}).encode()
    dest.write_atomically(_progress_path(dest, table), body)
