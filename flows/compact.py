"""The Prefect flow ``cloudtrail-compact`` (scheduled daily) over ``flows.compaction``, which
imports no Prefect so the CLI starts fast without it."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger

from flows.compaction import (
    DEFAULT_TARGET_MB,
    run_compact,
)


@flow(name="cloudtrail-compact")
def compact(
    dest: str, before: str | None = None, target_mb: int = DEFAULT_TARGET_MB
) -> dict[str, Any]:
    """Compact the closed days of the events table under ``dest`` (scheduled daily)."""
    summary = run_compact(
        dest, before=date.fromisoformat(before) if before else None, target_mb=target_mb
    )
    get_run_logger().info(
        "compacted %d partitions: %d files -> %d, %d duplicates dropped",
        summary.partitions_compacted,
        summary.files_before,
        summary.files_after,
        summary.duplicates_dropped,
    )
    return summary.as_json()
