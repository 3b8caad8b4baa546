"""The ingest flow: convert every log object under a source not yet in the table.

``run_ingest`` is the whole job as plain Python; the Prefect flow ``ingest``
runs the same function with each batch as a Prefect task, so the CLI can also
run it without an orchestrator (``--no-prefect``) and skip the API server's start.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from flows.aws import storage_options
from flows.batch import (
    EVENTS_FOLDER,
    INSIGHTS_FOLDER,
    TABLE_OF_KIND,
    KnownEventIds,
    PendingObject,
    PreparedBatch,
    commit_batch,
    convert_batch,
    prepare_batch,
)
from flows.register import register_after_ingest
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.state import converted_objects
from flows.storage import Storage
from transforms.errors import PipelineError, Problem, UnrecognisedKeyError
from transforms.keys import parse_key


class DestinationInsideSourceError(PipelineError):
    """The table would be written under the folder it reads logs from."""


Progress = Callable[[int, int], None]
"""Called with (objects done, objects to do) as batches finish."""


class BatchConverter(Protocol):
    def __call__(
        self,
        source: Storage,
        dest: Storage,
        batch: list[PendingObject],
        *,
        row_group_rows: int,
        known: KnownEventIds | None = None,
    ) -> BatchOutcome: ...


def plan(source: Storage, dest: Storage, summary: RunSummary) -> list[PendingObject]:
    """The event and Insights objects under ``source`` not converted yet; the rest is counted."""
    done = converted_objects(dest)
    pending: list[PendingObject] = []
    for stored in source.list_files():
        summary.objects_seen += 1
        url = source.url(stored.path)
        try:
            parsed = parse_key(url)
        except UnrecognisedKeyError as error:
            summary.objects_skipped["unrecognised_key"] += 1
            summary.problems.append(Problem(url, error.reason))
            continue
        if parsed.kind not in TABLE_OF_KIND:
            summary.objects_skipped[parsed.kind] += 1
            continue
        if (url, stored.size) in done:
            summary.objects_skipped["already_converted"] += 1
            continue
        pending.append(PendingObject(stored, url, parsed))
    return pending


def batches(
    pending: list[PendingObject], max_bytes: int, max_objects: int
) -> Iterator[list[PendingObject]]:
    """Consecutive groups of objects, bounded in bytes and count (memory stays flat)."""
    batch: list[PendingObject] = []
    size = 0
    for item in pending:
        if batch and (size + item.stored.size > max_bytes or len(batch) >= max_objects):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.stored.size
    if batch:
        yield batch


def run_ingest(
    source_url: str,
    dest_url: str,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    converter: BatchConverter = convert_batch,
    log: Callable[[str], Any] | None = None,
) -> RunSummary:
    """Convert the new log objects under ``source_url`` into the table under ``dest_url``."""
    settings = settings or Settings()  # type: ignore[call-arg]  # read from the environment
    started = time.perf_counter()
    # Retries and SSE-KMS (issue 7): the S3 options come from settings, set once here.
    source = Storage(source_url, **storage_options(source_url, settings))
    dest = Storage(dest_url, **storage_options(dest_url, settings, writes=True))
    if type(source.fs) is type(dest.fs) and _inside(dest.root, source.root):
        raise DestinationInsideSourceError(
            f"destination {dest_url} is inside the source {source_url}: the table would be "
            "read back as input; choose a destination outside the source"
        )
    summary = RunSummary(
        source=source.url(),
        events_table=dest.url(dest.path(EVENTS_FOLDER)),
        insights_table=dest.url(dest.path(INSIGHTS_FOLDER)),
    )
    pending = plan(source, dest, summary)
    if log:
        log(
            f"{summary.objects_seen} objects under {summary.source}: {len(pending)} to convert, "
            f"skipped {dict(summary.objects_skipped)}"
        )
    done = 0
    if progress:
        progress(done, len(pending))
    groups = batches(pending, settings.batch_bytes, settings.batch_objects)
    known = KnownEventIds(dest)
    rows = settings.row_group_rows
    if settings.workers > 1:
        for prepared in _prepared_in_parallel(source, groups, settings.workers, rows):
            summary.add(commit_batch(dest, prepared, row_group_rows=rows, known=known))
            done += len(prepared.readable)
            if progress:
                progress(done, len(pending))
    else:
        for batch in groups:
            summary.add(converter(source, dest, batch, row_group_rows=rows, known=known))
            done += len(batch)
            if progress:
                progress(done, len(pending))
    registrations, problems = register_after_ingest(dest_url, settings, summary)
    summary.catalog = [r.as_json() for r in registrations]
    summary.problems.extend(problems)
    summary.seconds = time.perf_counter() - started
    return summary


def _prepared_in_parallel(
    source: Storage, groups: Iterator[list[PendingObject]], workers: int, row_group_rows: int
) -> Iterator[PreparedBatch]:
    """Prepare batches in worker processes, yielding them in order, few in flight (memory)."""
    # spawn, not fork: the parent may run Prefect's threads, which fork would copy mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: deque[Future[PreparedBatch]] = deque()
        for batch in groups:
            in_flight.append(
                pool.submit(prepare_batch, source, batch, row_group_rows=row_group_rows)
            )
            if len(in_flight) > workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


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


@flow(name="cloudtrail-ingest", log_prints=False)
def ingest(source: str, dest: str) -> dict[str, Any]:
    """Convert new CloudTrail log objects under ``source`` into the Parquet table under ``dest``."""
    logger = get_run_logger()
    summary = run_ingest(
        source,
        dest,
        progress=_progress_hook,
        converter=_convert_batch_task,
        log=logger.info,
    )
    logger.info(
        "converted %d objects, wrote %d events in %d partitions, %d problems",
        summary.objects_converted,
        summary.events_written,
        len(summary.partitions),
        len(summary.problems),
    )
    return summary.as_json()
