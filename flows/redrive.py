"""The Prefect flow ``cloudtrail-redrive`` over ``flows.redriving``, which imports no Prefect so
the CLI starts fast without it; each quarantine file is a Prefect task with retries."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from flows.redriving import (
    Progress,
    redrive_file,
    run_redrive,
)

# --- The Prefect flow ------------------------------------------------------------------

_redrive_file_task = task(
    name="redrive-quarantine-file",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
)(redrive_file)

_progress_hook: Progress | None = None


def set_progress_hook(progress: Progress | None) -> None:
    """Let the CLI watch a flow run in this process (a callback can't be a flow parameter)."""
    global _progress_hook
    _progress_hook = progress


@flow(name="cloudtrail-redrive", log_prints=False)
def redrive(dest: str) -> dict[str, Any]:
    """Re-drive the quarantined log objects of the table under ``dest``."""
    logger = get_run_logger()
    summary = run_redrive(dest, progress=_progress_hook, redrive_one=_redrive_file_task)
    done = summary.outcome
    logger.info(
        "re-drove %d quarantined objects: %d cleared, %d replaced, %d still quarantined; "
        "wrote %d events",
        done.objects_seen,
        done.objects_cleared,
        done.objects_replaced,
        done.still_quarantined,
        done.events_written,
    )
    return summary.as_json()
