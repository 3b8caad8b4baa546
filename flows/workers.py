"""Work done in worker processes, each writing its own under the partitions' leases.

Ingest: the parent lists and plans; workers decode, de-duplicate, encode and
write batches, so a run uses every core it is given. Outcomes come back in batch
order, so a day's state (written by the parent) never runs ahead of its data.
Backfill: each (account, region, day) unit runs whole in a worker process
(``run_unit``); decoding holds the GIL, so threads could not use a second core.
A process keeps one eventID index for the table across its batches and units.

Measured on the 1M-event benchmark (2 cores): committing in the parent left both
workers waiting while it re-encoded every partition holding a redelivered event
(1.33x the one-process rate, not ~2x); and workers start in 1-2 s of imports,
which now overlap the parent's listing. This module imports no Prefect, so a
worker doesn't pay for it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from functools import partial
from types import TracebackType

from flows.aws import RequestCounter
from flows.batch import PendingObject, convert_batch
from flows.event_index import KnownEventIds
from flows.incremental import convert_days, new_summary, plan_days
from flows.listing import DayFolder
from flows.memory import release_freed_memory
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.storage import Storage

WorkerResult = tuple[BatchOutcome, Counter[str]]


class BatchWorkers:
    """A pool of worker processes for one run; started at once, used by ``convert``."""

    def __init__(self, source: Storage, dest: Storage, settings: Settings) -> None:
        self._source, self._dest, self._settings = source, dest, settings
        self._pool = process_pool(settings.workers)

    def __enter__(self) -> BatchWorkers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._pool.shutdown(cancel_futures=error is not None)

    def convert(
        self, groups: Iterator[list[PendingObject]]
    ) -> Iterator[tuple[list[PendingObject], BatchOutcome]]:
        """Convert each batch in a worker; yield it with its outcome, in order, few in flight."""
        in_flight: deque[tuple[list[PendingObject], Future[WorkerResult]]] = deque()

        def finish_oldest() -> tuple[list[PendingObject], BatchOutcome]:
            batch, job = in_flight.popleft()
            outcome, table_requests = job.result()
            self._dest.counter.add(table_requests)
            return batch, outcome

        source_url, dest_url = self._source.url(), self._dest.url()
        for batch in groups:
            job = self._pool.submit(_convert, source_url, dest_url, self._settings, batch)
            in_flight.append((batch, job))
            if len(in_flight) > self._settings.workers:
                yield finish_oldest()
        while in_flight:
            yield finish_oldest()


def process_pool(processes: int) -> ProcessPoolExecutor:
    """``processes`` worker processes, started now (their imports overlap the caller's work)."""
    # spawn, not fork: the parent may run Prefect's threads, which fork would copy.
    pool = ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn")
    )
    for _ in range(processes):
        pool.submit(_ready)
    return pool


def unit_processes(settings: Settings) -> int:
    """Backfill worker processes: units at a time, at most one per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(settings.backfill_concurrency, cores or 1))


def _ready() -> None:
    """Nothing: submitted once per worker so the pool starts its processes now."""


_tables: dict[tuple[str, int], tuple[Storage, KnownEventIds]] = {}
"""In a process: the destination and its eventID index, per thread, kept across batches
and units (re-reading a partition's IDs for every batch made a run quadratic)."""


def table_of(dest_url: str, settings: Settings) -> tuple[Storage, KnownEventIds]:
    """This thread's destination storage and eventID index for ``dest_url``."""
    key = (dest_url, threading.get_ident())
    if key not in _tables:
        dest = Storage(dest_url, settings=settings, counter=RequestCounter())
        _tables[key] = (dest, KnownEventIds(dest))
    return _tables[key]


def _convert(
    source_url: str, dest_url: str, settings: Settings, batch: list[PendingObject]
) -> WorkerResult:
    """One batch in a worker process; with the table requests it made (the parent counts)."""
    source = Storage(source_url, settings=settings, counter=RequestCounter())
    dest, known = table_of(dest_url, settings)
    before = dest.requests()
    outcome = convert_batch(
        source, dest, batch, row_group_rows=settings.row_group_rows, known=known
    )
    release_freed_memory()
    return outcome, dest.requests() - before


def run_unit(
    source_url: str, dest_url: str, unit: DayFolder, settings: Settings, now: datetime
) -> RunSummary:
    """Convert what is not done yet in one backfill unit (a worker process, a Dask worker).

    Its batches share this process's eventID index, so a partition's index is read
    once, not once per batch; its summary carries the requests it made.
    """
    source = Storage(source_url, settings=settings, counter=RequestCounter())
    dest, known = table_of(dest_url, settings)
    before = dest.requests()
    summary = new_summary(source, dest)
    started = time.perf_counter()
    works = plan_days(source, dest, [unit], summary, now)
    convert_days(
        source, dest, works, summary,
        settings=settings, now=now, converter=partial(convert_batch, known=known),
    )  # fmt: skip
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests() - before)
    summary.seconds = time.perf_counter() - started
    return summary
