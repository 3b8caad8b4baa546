"""Where batches and backfill units run: on threads of this process, one per usable core.

Ingest: this thread lists and plans; worker threads decode, de-duplicate, encode
and write batches, each under the partitions' leases with its own eventID index.
Outcomes come back in batch order, so a day's state (written by this thread)
never runs ahead of its data. Backfill: each (account, region, day) unit runs
whole on a worker thread (``run_unit``), which keeps one eventID index for the
table across its units. Threads, not processes (docs/adr/0017): Polars, hashlib,
zlib, file and network I/O and the native scanner's walk of a document release
the GIL, and a thread costs no start-up and no second copy of the
libraries (worker processes paid 1 s of imports each and doubled the run's
memory). This module imports no Prefect.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as ``taskset`` or a cgroup sets it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def batch_workers(settings: Settings, batches: Iterator[object]) -> int:
    """Threads converting a run's batches: the setting if given, else one per usable core
    when more than one batch is pending, else 1 (a thread would only wait)."""
    if settings.workers is not None:
        return settings.workers
    more_than_one = next(batches, None) is not None and next(batches, None) is not None
    return usable_cores() if more_than_one else 1


class BatchWorkers:
    """Threads converting one run's batches (``settings.workers`` of them), used by ``convert``."""

    def __init__(self, source: Storage, dest: Storage, settings: Settings) -> None:
        self._source, self._dest, self._settings = source, dest, settings
        self._threads = settings.workers or 1
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="batch")

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
        """Convert each batch in a worker; yield it with its outcome, in order, few in flight.

        At most one batch per thread is converting and one more waits (only its list of
        objects), so memory is bounded by the threads' batches, as it was by processes'.
        """
        in_flight: deque[tuple[list[PendingObject], Future[WorkerResult]]] = deque()

        def finish_oldest() -> tuple[list[PendingObject], BatchOutcome]:
            batch, job = in_flight.popleft()
            outcome, table_requests = job.result()
            self._dest.counter.add(table_requests)
            return batch, outcome

        for batch in groups:
            in_flight.append((batch, self._pool.submit(self._convert, batch)))
            if len(in_flight) > self._threads:
                yield finish_oldest()
        while in_flight:
            yield finish_oldest()

    def _convert(self, batch: list[PendingObject]) -> WorkerResult:
        """One batch in a worker thread; with the table requests it made (the run counts).

        The source is the run's own (its reads are counted there; s3fs and the local
        filesystem take calls from any thread); the destination is this thread's
        (``table_of``), so its counter and eventID index are used by this thread alone,
        and go with the pool's threads at the run's end.
        """
        dest, known = table_of(self._dest.url(), self._settings)
        before = dest.requests()
        outcome = convert_batch(
            self._source, dest, batch, row_group_rows=self._settings.row_group_rows, known=known
        )
        release_freed_memory()
        return outcome, dest.requests() - before


def unit_pool(settings: Settings, units: int) -> ThreadPoolExecutor:
    """Backfill's worker threads: units at a time, at most one per core this process may use,
    and no more than there are ``units``."""
    threads = max(1, min(settings.backfill_concurrency, usable_cores(), units))
    return ThreadPoolExecutor(threads, thread_name_prefix="unit")


_tables = threading.local()
"""Each thread's destination and eventID index, by table URL, kept across its units (re-reading
a partition's IDs for every batch made a run quadratic); gone with the thread."""


def table_of(dest_url: str, settings: Settings) -> tuple[Storage, KnownEventIds]:
    """This thread's destination storage and eventID index for ``dest_url``."""
    tables: dict[str, tuple[Storage, KnownEventIds]] = _tables.__dict__.setdefault("by_url", {})
    if dest_url not in tables:
        dest = Storage(dest_url, settings=settings, counter=RequestCounter())
        tables[dest_url] = (dest, KnownEventIds(dest))
    return tables[dest_url]


def run_unit(
    source_url: str, dest_url: str, unit: DayFolder, settings: Settings, now: datetime
) -> RunSummary:
    """Convert what is not done yet in one backfill unit (a worker thread, a Dask worker).

    Its batches share this thread's eventID index, so a partition's index is read
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
