"""The backfill job as plain Python: history on demand, one (account, region, delivery day)
unit at a time on worker threads.

Units are planned with delimiter listings (no object listed to plan). Each unit
runs whole on a worker thread (one per core, at most ``backfill_concurrency``:
decoding and encoding release the GIL, docs/adr/0017). Each unit uses the same
state as ``ingest`` (its day folder's mark), so a rerun does only what is missing
and ingest and backfill never convert an object twice; a thread's units share one
eventID index per partition (docs/adr/0015).

This module imports no Prefect: ``ctparquet backfill`` without a Prefect API runs
it and skips Prefect's start-up (2-3 s). The Prefect flow ``cloudtrail-backfill``
(``flows.backfill``, what the deployment runs) converts the same units as tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import as_completed
from datetime import UTC, date, datetime

from flows.incremental import new_summary
from flows.listing import DayFolder, day_folders, days_between, discover
from flows.report import RunSummary
from flows.run import open_storages
from flows.settings import Settings
from flows.storage import Storage
from flows.workers import run_unit, unit_pool
from transforms.errors import PipelineError

UnitProgress = Callable[[int, int], None]
"""Called with (units done, units planned)."""


class BackfillRangeError(PipelineError):
    """The backfill's dates are not a range (start after end)."""


def plan_units(
    source: Storage,
    start: date,
    end: date,
    *,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
) -> list[DayFolder]:
    """The (account, region, day) folders to convert: trails discovered, days in the range."""
    if start > end:
        raise BackfillRangeError(f"start {start} is after end {end}", key=source.url())
    found = discover(source, accounts=accounts, regions=regions)
    days = [d for d in days_between(start, end) if found.admits(d)]
    return day_folders(found.trails, days)


def run_backfill(
    source_url: str,
    dest_url: str,
    start: date,
    end: date,
    *,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
    progress: UnitProgress | None = None,
) -> RunSummary:
    """The backfill as plain Python (no orchestrator), its units on worker threads."""
    settings = settings or Settings()  # read from the environment
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    source, dest = open_storages(source_url, dest_url, settings)
    units = plan_units(source, start, end, accounts=accounts, regions=regions)
    summary = new_summary(source, dest)
    summary.units = len(units)
    if progress:
        progress(0, len(units))
    if units:  # no worker thread started for nothing to do
        with unit_pool(settings, len(units)) as pool:
            jobs = [pool.submit(run_unit, source_url, dest_url, u, settings, now) for u in units]
            for done, job in enumerate(as_completed(jobs), 1):
                summary.merge(job.result())
                if progress:
                    progress(done, len(units))
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary
