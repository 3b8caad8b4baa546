"""The ingest job as plain Python: list the new log objects, convert them, record state.

A scheduled run discovers the trail's accounts and regions with delimiter
listings, then lists each (account, region) folder of today and the days before
it (``lookback_days``), and every folder left pending by a failed read whatever
its day: it reads no object twice and, when nothing is new, no log object at
all. A first run over a trail with older history says how many delivery days it
did not list, and the backfill command that converts them.

This module imports no Prefect: ``ctparquet ingest --no-prefect`` skips its
start-up time and memory (about 0.8 s and 100 MB). The
Prefect flow in ``flows.ingest`` runs this same function. Batches are converted
by workers (``flows.workers``): one per usable core when there is more than one
batch, unless ``workers`` says otherwise; processes forked at the run's start
where that is safe, else threads.
"""

from __future__ import annotations

import dataclasses
import posixpath
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from flows.aws import RequestCounter
from flows.batch import KnownEventIds, convert_batch
from flows.incremental import (
    BatchConverter,
    DayWork,
    Progress,
    batches,
    convert_days,
    log_plan,
    new_summary,
    plan_days,
)
from flows.listing import (
    DayFolder,
    Discovery,
    day_folders,
    delivered_days,
    delivered_days_before,
    discover,
    window,
)
from flows.register import register_after_ingest
from flows.report import OutsideWindow, RunSummary
from flows.settings import Settings
from flows.state import UnsafeKeyError, pending_days, trail_key
from flows.storage import Storage, remove_local_leftovers
from flows.workers import BatchWorkers, batch_workers, fork_workers
from transforms.errors import PipelineError


class DestinationInsideSourceError(PipelineError):
    """The table would be written under the folder it reads logs from."""


def open_storages(source_url: str, dest_url: str, settings: Settings) -> tuple[Storage, Storage]:
    """Source and destination, each counting its requests; refuse a table inside its source."""
    source = Storage(source_url, settings=settings, counter=RequestCounter())
    dest = Storage(dest_url, settings=settings, counter=RequestCounter())
    if type(source.fs) is type(dest.fs) and _inside(dest.root, source.root):
        raise DestinationInsideSourceError(
            f"destination {dest_url} is inside the source {source_url}: the table would be "
            "read back as input; choose a destination outside the source"
        )
    remove_local_leftovers(dest)  # of a run killed before it could tidy up
    return source, dest


def run_ingest(
    source_url: str,
    dest_url: str,
    *,
    lookback_days: int | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    converter: BatchConverter = convert_batch,
    log: Callable[[str], Any] | None = None,
) -> RunSummary:
    """Convert the new log objects under ``source_url`` into the table under ``dest_url``.

    ``lookback_days`` (default: the setting) is how many delivery days back from
    ``now``'s date to look, 0 for every day the trail has; ``now`` is the run's
    clock (default: the current UTC time).
    """
    settings = settings or Settings()  # read from the environment
    now = now or datetime.now(UTC)
    lookback = settings.lookback_days if lookback_days is None else lookback_days
    started = time.perf_counter()
    # Forked first, while nothing has started a thread yet; shut down unused if one batch.
    with fork_workers(settings) or nullcontext() as processes:
        return _ingest(
            source_url, dest_url, lookback=lookback, now=now, settings=settings,
            processes=processes, started=started, progress=progress, converter=converter, log=log,
        )  # fmt: skip


def _ingest(
    source_url: str,
    dest_url: str,
    *,
    lookback: int,
    now: datetime,
    settings: Settings,
    processes: ProcessPoolExecutor | None,
    started: float,
    progress: Progress | None,
    converter: BatchConverter,
    log: Callable[[str], Any] | None,
) -> RunSummary:
    source, dest = open_storages(source_url, dest_url, settings)
    summary = new_summary(source, dest)
    found = discover(source)
    folders, pending = folders_to_list(source, dest, found, now.date(), lookback)
    works = plan_days(source, dest, folders, summary, now, marked_pending=pending)
    if lookback:
        first = now.date() - timedelta(days=lookback - 1)
        summary.days_outside_window = outside_window(source, found, works, first)
        if summary.days_outside_window:
            outside = summary.days_outside_window
            outside.command = (
                f"ctparquet backfill {source_url} {dest_url} "
                f"--start {outside.first} --end {outside.last}"
            )
    log_plan(summary, sum(len(w.pending) for w in works), log)
    planned = batches(
        [item for work in works for item in work.pending],
        settings.batch_bytes,
        settings.batch_objects,
    )
    threads = batch_workers(settings, planned)
    settings = dataclasses.replace(settings, workers=threads)
    if threads < 2 and processes:
        processes.shutdown()
        processes = None
    with (
        BatchWorkers(source, dest, settings, processes) if threads > 1 else nullcontext()
    ) as workers:
        summary.workers = f"{threads} {workers.kind}" if workers else "1 (this process)"
        # In this thread, one index of the table's eventIDs for the whole run (refreshed
        # under each partition's lease); each worker thread keeps its own.
        known = KnownEventIds(dest)
        convert_days(
            source,
            dest,
            works,
            summary,
            settings=settings,
            now=now,
            converter=partial(converter, known=known),
            progress=progress,
            run_batches=workers.convert if workers else None,
        )
    name_present_tables(dest, summary)
    registrations, problems = register_after_ingest(dest_url, settings, summary)
    summary.catalog = [r.as_json() for r in registrations]
    summary.problems.extend(problems)
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary


def folders_to_list(
    source: Storage, dest: Storage, found: Discovery, today: date, lookback: int
) -> tuple[list[DayFolder], set[DayFolder]]:
    """The window's folders of every trail, and those a pending marker names, whatever day."""
    marked = pending_days(dest)  # one LIST: folders with an object not read yet
    folders: list[DayFolder] = []
    pending: set[DayFolder] = set()
    for trail in found.trails:
        days = delivered_days(source, trail) if lookback == 0 else window(today, lookback)
        try:
            key = trail_key(trail.path, local=source.is_local)
        except UnsafeKeyError:  # no state of its own: plan_days names it as a problem
            key = None
        left = [day for marked_key, day in marked if marked_key == key and found.admits(day)]
        pending.update(DayFolder(trail, day) for day in left)
        folders += day_folders([trail], [d for d in [*days, *left] if found.admits(d)])
    return folders, pending


def outside_window(
    source: Storage, found: Discovery, works: list[DayWork], first: date
) -> OutsideWindow | None:
    """On a trail's first run here (no state for any day of its window), the delivery days
    before the window, found with year and month delimiter listings, and how to convert them."""
    seen_before = {w.folder.trail for w in works if w.version is not None}
    days: set[date] = set()
    for trail in found.trails:
        if trail not in seen_before:
            days.update(d for d in delivered_days_before(source, trail, first) if found.admits(d))
    if not days:
        return None
    return OutsideWindow(len(days), min(days), max(days), command="")


def name_present_tables(dest: Storage, summary: RunSummary) -> None:
    """Name in the summary only the tables whose folder exists (one LIST when unsure)."""
    if summary.partitions and summary.insight_partitions:
        return
    present = {posixpath.basename(path) for path in dest.list_dir(dest.root).folders}
    for attribute in ("events_table", "insights_table"):
        url = getattr(summary, attribute)
        if url and posixpath.basename(url.rstrip("/")) not in present:
            setattr(summary, attribute, "")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
