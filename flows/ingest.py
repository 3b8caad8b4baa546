"""The ingest flow: convert the new log objects of a trail's recent delivery-day folders.

``run_ingest`` (in ``flows.run``) is the whole job as plain Python; the Prefect
flow ``ingest`` runs the same function with each batch as a Prefect task and
publishes the run's report as a Markdown artifact. The CLI can run it without an
orchestrator (``--no-prefect``) and skip the API server's start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from flows.batch import convert_batch
from flows.incremental import Progress, batches
from flows.report import RunSummary
from flows.run import DestinationInsideSourceError, open_storages, run_ingest

__all__ = [
    "DestinationInsideSourceError",
    "Progress",
    "batches",
    "ingest",
    "open_storages",
    "run_ingest",
    "set_progress_hook",
]


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
