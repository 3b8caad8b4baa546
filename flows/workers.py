"""Where batches and backfill units run: worker processes or threads, one per usable core.

Ingest: this process lists and plans; workers decode, de-duplicate, encode and
write batches, each under the partitions' leases with its own eventID index.
Outcomes come back in batch order, so a day's state (written by this process)
never runs ahead of its data. Backfill: each (account, region, day) unit runs
whole on a worker thread (``run_unit``), which keeps one eventID index for the
table across its units.

Ingest's workers are processes forked before the run plans, when this process
runs a single thread then (a command-line run): forked after the imports, they
cost no start-up, and each has its own interpreter lock. Each is pinned to a core
of its own, so it and its Polars pool stay there: unpinned, forked workers were no
faster than threads; pinned, they take 9-10% less time on two cores (docs/adr/0019).
Otherwise (a Prefect flow run, a process that has used Polars' thread pool) a fork
could copy a lock another thread holds, so the workers are threads. This module
imports no Prefect.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from flows.aws import RequestCounter
from flows.batch import PendingObject, convert_batch
from flows.event_index import KnownEventIds
from flows.incremental import convert_days, new_summary, plan_days
from flows.listing import DayFolder
from flows.memory import release_freed_memory
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.storage import Storage
from transforms.errors import PipelineError

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

WorkerResult = tuple[BatchOutcome, Counter[str], Counter[str]]
"""A batch's outcome, with the table and source requests it made."""


class WorkerDiedError(PipelineError):
    """A worker process ended (killed, out of memory) while it converted a batch."""


def usable_cores() -> int:
    """The cores this process may run on: its affinity (``taskset``, a cpuset), capped by
    the CPU quota of its cgroup (``docker run --cpus``, a Kubernetes CPU limit), which
    leaves the affinity at every core of the host: a worker per host core there would
    hold a batch's memory each and be throttled."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = cores or os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return min(cores, quota) if quota else cores


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, membership: str | None = None) -> int | None:
    """Whole CPUs the cgroup quotas of this process allow (at least 1), or None where none is
    set or none can be read: the smallest of cgroup v2's ``cpu.max``, else of v1's
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, in the process's cgroup and those above
    it (a container sees its own cgroup mounted at the root)."""
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    found: list[int | None] = []
    for line in membership.splitlines():
        hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
        if hierarchy == "0" and controllers == "":
            for folder in _folders_up(root, path):
                text = _read(folder / "cpu.max")
                found.append(quota_cpus(*text.split()[:2]) if text else None)
        elif "cpu" in controllers.split(","):
            for folder in _folders_up(root / controllers, path):
                quota = _read(folder / "cpu.cfs_quota_us")
                period = _read(folder / "cpu.cfs_period_us")
                found.append(quota_cpus(quota, period) if quota and period else None)
    quotas = [cpus for cpus in found if cpus is not None]
    return min(quotas) if quotas else None


def _folders_up(mount: Path, path: str) -> list[Path]:
    """The folders of cgroup ``path`` under ``mount`` and of each cgroup above it."""
    parts = [part for part in path.strip().split("/") if part]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def quota_cpus(quota: str, period: str = "100000") -> int | None:
    """Whole CPUs a quota of ``quota`` µs per ``period`` µs allows, at least 1 ("max" or a
    negative quota: no quota, None). Rounded down, as Go's automaxprocs does: a part of a
    core is no room for one more worker."""
    try:
        allowed, every = int(quota), int(period)
    except ValueError:  # "max"
        return None
    if allowed <= 0 or every <= 0:
        return None
    return max(1, allowed // every)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def batch_workers(settings: Settings, batches: Iterator[object]) -> int:
    """Workers converting a run's batches: the setting if given, else one per usable core
    when more than one batch is pending, else 1 (a thread would only wait)."""
    if settings.workers is not None:
        return settings.workers
    more_than_one = next(batches, None) is not None and next(batches, None) is not None
    return usable_cores() if more_than_one else 1


_FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd", "polars-ooc-clea"})
"""Threads the imports start that a fork may leave behind: the allocator's purger and Polars'
spill-file cleaner, which wait on nothing a worker uses. Polars' compute pool, its I/O
runtime, s3fs's event loop, Prefect's services and a progress bar's refresher are not
among them (``/proc`` shows a thread's name cut to 15 bytes)."""


def fork_workers(settings: Settings) -> ProcessPoolExecutor | None:
    """Worker processes for a run's batches, forked now; None where a fork is not safe here.

    Called before the run lists or plans anything, while this process runs only its own
    thread: a fork copies a lock any other thread holds, held for ever in the child
    (Polars' pool is the known case, and its guide says so). Each worker runs on a core
    of its own (``worker_core``).
    """
    count = settings.workers or usable_cores()
    if not settings.worker_processes or count < 2 or not _only_this_thread():
        return None
    context = multiprocessing.get_context("fork")
    workers_started = context.Value("i", 0)
    cores = cores_to_pin(sorted(os.sched_getaffinity(0)), usable_cores())
    pool = ProcessPoolExecutor(
        count,
        mp_context=context,
        initializer=_start_worker,
        initargs=(workers_started, count, cores),
    )
    pool.submit(int)  # a fork pool starts all its processes with its first task: now
    return pool


def _only_this_thread() -> bool:
    """True where this process runs one thread besides ``_FORK_SAFE_THREADS`` (Linux)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    me = str(threading.get_native_id())
    try:
        others = [t for t in os.listdir("/proc/self/task") if t != me]
        names = {Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in others}
    except OSError:  # a thread ended while listed, or no /proc: not sure, so no fork
        return False
    return names <= _FORK_SAFE_THREADS


def cores_to_pin(affinity: list[int], usable: int) -> list[int]:
    """The cores workers may be pinned to: the process's affinity where it is all the
    process may use (``taskset``, a cpuset), and none where a CPU quota narrower than it
    caps the workers (a container that sees every core of its host shares them with the
    host's other tenants: pinned, every such run would stack its workers on the first
    cores, where the quota lets them run on any)."""
    return affinity if usable == len(affinity) else []


def worker_core(index: int, workers: int, cores: list[int]) -> int | None:
    """The core worker ``index`` of ``workers`` is pinned to: its own one of ``cores``, or
    None (run anywhere) where there are more workers than cores to give each its own.

    Pinned, a worker and the Polars pool it starts (whose threads inherit its affinity)
    stay on one core: its caches stay warm and the workers do not take turns on both
    cores. Measured on two cores (docs/adr/0019): 9-10% less time than threads, where
    unpinned workers were no faster than threads.
    """
    return cores[index] if workers <= len(cores) else None


def _start_worker(workers_started: Synchronized[int], workers: int, cores: list[int]) -> None:
    """A forked worker's first step: take its place among the workers, pin it, tie it to the run."""
    with workers_started.get_lock():
        index = workers_started.value
        workers_started.value += 1
    core = worker_core(index, workers, cores)
    if core is not None:
        os.sched_setaffinity(0, {core})
    _die_with_parent()


def _die_with_parent() -> None:
    """A worker is killed with the run (SIGKILL included), as a thread would be: no batch
    goes on writing after the run that would record it is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the run died before the call above
        os._exit(1)


_process_sources: dict[str, Storage] = {}
"""A worker process's source storage, by URL, kept across its batches."""


def convert_in_worker(
    source_url: str, dest_url: str, settings: Settings, batch: list[PendingObject]
) -> WorkerResult:
    """One batch in a worker process, with the table and source requests it made."""
    if source_url not in _process_sources:
        _process_sources[source_url] = Storage(
            source_url, settings=settings, counter=RequestCounter()
        )
    source = _process_sources[source_url]
    dest, known = table_of(dest_url, settings)
    table_before, source_before = dest.requests(), source.requests()
    try:
        outcome = convert_batch(
            source, dest, batch, row_group_rows=settings.row_group_rows, known=known
        )
    except Exception as error:  # noqa: BLE001 - every failure goes back to the run, as a thread's
        raise _portable(error) from None
    release_freed_memory()
    return outcome, dest.requests() - table_before, source.requests() - source_before


def _portable(error: Exception) -> Exception:
    """``error`` if it survives the trip back to the run; else one that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to travel means: send words instead
        return PipelineError(f"{type(error).__name__}: {error}")
    return error


class BatchWorkers:
    """Workers converting one run's batches (``settings.workers`` of them), used by ``convert``:
    the processes of ``fork_workers`` when given, else threads of this process."""

    def __init__(
        self,
        source: Storage,
        dest: Storage,
        settings: Settings,
        processes: ProcessPoolExecutor | None = None,
    ) -> None:
        self._source, self._dest, self._settings = source, dest, settings
        self._threads = settings.workers or 1
        self.kind = "processes" if processes else "threads"
        self._pool: Executor = processes or ThreadPoolExecutor(
            self._threads, thread_name_prefix="batch"
        )

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
            try:
                outcome, table_requests, source_requests = job.result()
            except BrokenProcessPool:
                raise WorkerDiedError(
                    f"a worker process ended (killed, or out of memory?) while this run "
                    f"converted {len(batch)} objects from {batch[0].url}; batches not yet "
                    "recorded as converted are converted again by the next run",
                    key=batch[0].url,
                ) from None
            self._dest.counter.add(table_requests)
            self._source.counter.add(source_requests)
            return batch, outcome

        for batch in groups:
            in_flight.append((batch, self._submit(batch)))
            if len(in_flight) > self._threads:
                yield finish_oldest()
        while in_flight:
            yield finish_oldest()

    def _submit(self, batch: list[PendingObject]) -> Future[WorkerResult]:
        if isinstance(self._pool, ProcessPoolExecutor):
            return self._pool.submit(
                convert_in_worker, self._source.url(), self._dest.url(), self._settings, batch
            )
        return self._pool.submit(self._convert, batch)

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
        return outcome, dest.requests() - before, Counter()


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
