"""The ingest job as plain Python: list the new log objects, convert them, record state.

A scheduled run discovers the trail's accounts and regions with delimiter
listings, then lists each (account, region) folder of today and the days before
it (``lookback_days``) from the mark its state keeps: it reads no object twice
and, when nothing is new, no log object at all.

This module imports no Prefect: ``ctparquet ingest --no-prefect`` and worker
processes skip its start-up time and memory (about 0.8 s and 100 MB). The
Prefect flow in ``flows.ingest`` runs this same function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from typing import Any

from flows.aws import RequestCounter
from flows.batch import KnownEventIds, convert_batch
from flows.incremental import (
    BatchConverter,
    Progress,
    convert_days,
    log_plan,
    new_summary,
    plan_days,
)
from flows.listing import day_folders, delivered_days, discover, window
from flows.register import register_after_ingest
from flows.report import RunSummary
from flows.settings import Settings
from flows.storage import Storage
from flows.workers import BatchWorkers
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
    source, dest = open_storages(source_url, dest_url, settings)
    summary = new_summary(source, dest)
    # Worker processes start first, so their imports overlap the listing below.
    with BatchWorkers(source, dest, settings) if settings.workers > 1 else nullcontext() as workers:
        found = discover(source)
        folders = []
        for trail in found.trails:
            days = delivered_days(source, trail) if lookback == 0 else window(now.date(), lookback)
            folders += day_folders([trail], [d for d in days if found.admits(d)])
        works = plan_days(source, dest, folders, summary, now)
        log_plan(summary, sum(len(w.pending) for w in works), log)
        # In this process, one index of the table's eventIDs for the whole run (refreshed
        # under each partition's lease); each worker process keeps its own.
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
    registrations, problems = register_after_ingest(dest_url, settings, summary)
    summary.catalog = [r.as_json() for r in registrations]
    summary.problems.extend(problems)
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
