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

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from flows.aws import RequestCounter
from flows.batch import (
    KnownEventIds,
    PendingObject,
    PreparedBatch,
    commit_batch,
    convert_batch,
    prepare_batch,
)
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
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.storage import Storage
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
    found = discover(source)
    folders = []
    for trail in found.trails:
        days = delivered_days(source, trail) if lookback == 0 else window(now.date(), lookback)
        folders += day_folders([trail], [d for d in days if found.admits(d)])
    works = plan_days(source, dest, folders, summary, now)
    log_plan(summary, sum(len(w.pending) for w in works), log)
    # One index of the table's eventIDs for the whole run (refreshed under each partition's
    # lease), and batches prepared in worker processes when the settings ask for them.
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
        run_batches=(
            partial(_in_worker_processes, source, dest, settings, known)
            if settings.workers > 1
            else None
        ),
    )
    registrations, problems = register_after_ingest(dest_url, settings, summary)
    summary.catalog = [r.as_json() for r in registrations]
    summary.problems.extend(problems)
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary


def _in_worker_processes(
    source: Storage,
    dest: Storage,
    settings: Settings,
    known: KnownEventIds,
    groups: Iterator[list[PendingObject]],
) -> Iterator[tuple[list[PendingObject], BatchOutcome]]:
    """Prepare batches in worker processes; commit each here, in order, few in flight.

    Committing stays in this process so the eventID check always sees earlier writes.
    """
    # spawn, not fork: the parent may run Prefect's threads, which fork would copy mid-flight.
    context = multiprocessing.get_context("spawn")
    rows = settings.row_group_rows
    with ProcessPoolExecutor(max_workers=settings.workers, mp_context=context) as pool:
        in_flight: deque[tuple[list[PendingObject], Future[PreparedBatch]]] = deque()

        def commit_oldest() -> tuple[list[PendingObject], BatchOutcome]:
            batch, future = in_flight.popleft()
            return batch, commit_batch(dest, future.result(), row_group_rows=rows, known=known)

        for batch in groups:
            in_flight.append(
                (batch, pool.submit(_prepare_in_worker, source.url(), settings, batch, rows))
            )
            if len(in_flight) > settings.workers:
                yield commit_oldest()
        while in_flight:
            yield commit_oldest()


def _prepare_in_worker(
    source_url: str, settings: Settings, batch: list[PendingObject], row_group_rows: int
) -> PreparedBatch:
    """A worker process's half of a batch, on a storage of its own (requests not counted)."""
    source = Storage(source_url, settings=settings, counter=RequestCounter())
    return prepare_batch(source, batch, row_group_rows=row_group_rows, encode=True)


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
