"""The ingest flow: convert the new log objects of a trail's recent delivery-day folders.

``run_ingest`` is the whole job as plain Python; the Prefect flow ``ingest``
runs the same function with each batch as a Prefect task and publishes the
run's report as a Markdown artifact. The CLI can run it without an orchestrator
(``--no-prefect``) and skip the API server's start.

A scheduled run discovers the trail's accounts and regions with delimiter
listings, then lists each (account, region) folder of today and the days before
it (``lookback_days``) from the mark its state keeps: it reads no object twice
and, when nothing is new, no log object at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from flows.aws import RequestCounter
from flows.batch import KnownEventIds, convert_batch
from flows.incremental import (
    BatchConverter,
    Progress,
    batches,
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

__all__ = [
    "DestinationInsideSourceError",
    "Progress",
    "batches",
    "ingest",
    "run_ingest",
    "set_progress_hook",
]


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


_convert_batch_task = task(
    name="convert-batch",
    cache_policy=NO_CACHE,  # Inputs are storage handles and object lists: nothing to cache on.
    retries=2,
    retry_delay_seconds=5,
)(convert_batch)

_progress_hook: Progress | None = None


def set_progress_hook(progress: Progress | None) -> None:
    """Let the CLI watch a flow run in this process (a callback can't be a flow parameter)."""
    global _progress_hook
    _progress_hook = progress


def publish_report(summary: RunSummary, kind: str) -> None:
    """The run's report as a Markdown artifact on the flow run (shown in the Prefect UI)."""
    create_markdown_artifact(
        markdown=summary.to_markdown(f"CloudTrail {kind}"),
        key=f"cloudtrail-{kind}-report",
        description=(
            f"{summary.objects_converted:,} objects, {summary.events_written:,} events written, "
            f"{len(summary.problems):,} problems"
        ),
    )


@flow(name="cloudtrail-ingest", log_prints=False)
def ingest(
    source: str,
    dest: str,
    lookback_days: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Convert new CloudTrail log objects under ``source`` into the Parquet table under ``dest``.

    ``lookback_days``: delivery days to list back from today (default: the
    CTPARQUET_LOOKBACK_DAYS setting, 2; 0 = every day). ``now``: the run's clock,
    for replays and tests (default: the current time).
    """
    logger = get_run_logger()
    summary = run_ingest(
        source,
        dest,
        lookback_days=lookback_days,
        now=now,
        progress=_progress_hook,
        converter=_convert_batch_task,
        log=logger.info,
    )
    logger.info(
        "converted %d objects, wrote %d events in %d partitions, %d problems, %s S3 requests",
        summary.objects_converted,
        summary.events_written,
        len(summary.partitions),
        len(summary.problems),
        sum(summary.source_requests.values()) + sum(summary.table_requests.values()),
    )
    publish_report(summary, "ingest")
    return summary.as_json()
