"""The verify flow: prove, from CloudTrail's digests and the conversion records, that every
log object of some delivery days is in the table, or name it.

``run_verify`` (in ``flows.verification``) is the whole job as plain Python; this flow
runs it and publishes its report as a Markdown artifact. Deployed daily
(``deploy/prefect.yaml``) over the last 7 delivery days, with ``repair`` on, it also
converts what a scheduled ingest could not have listed (an object that arrived late
with a name before its folder's mark).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.verification import run_verify


@flow(name="cloudtrail-verify", log_prints=False)
def verify(
    source: str,
    dest: str,
    *,
    start: date | None = None,
    end: date | None = None,
    repair: bool = False,
    signatures: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Reconcile the trail under ``source`` with the table under ``dest`` for the delivery
    days ``start``..``end`` (default: the last 7); ``repair`` converts what is missing;
    ``signatures`` checks each digest's signature. ``now``: the run's clock, for tests."""
    logger = get_run_logger()
    summary = run_verify(
        source, dest, start=start, end=end, repair=repair, now=now, log=logger.info
    )
    logger.info(
        "verified %d objects and %d digest log files of %s..%s: %d problems",
        summary.counts["objects_seen"],
        summary.counts["digest_log_files"],
        summary.start,
        summary.end,
        len(summary.problems),
    )
    create_markdown_artifact(
        markdown=summary.to_markdown(),
        key="cloudtrail-verify-report",
        description=f"{len(summary.problems):,} problems",
    )
    return summary.as_json()
