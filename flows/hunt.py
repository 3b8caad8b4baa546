"""The Prefect flow ``cloudtrail-hunt`` (scheduled daily) over ``flows.hunting``.

``flows.hunting`` imports no Prefect, so ``ctparquet hunt`` starts fast. The flow publishes
the findings as a table artifact and reports them as problems of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.hunting import (
    findings_table,
    run_hunt,
)
from flows.report_html import render_markdown, summarise


@flow(name="cloudtrail-hunt", log_prints=False)
def hunt(
    dest: str,
    lookback_days: int = 1,
    queries: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Ask the pack's questions of the last ``lookback_days`` days of the table under ``dest``.

    Publishes the findings as a table artifact (``cloudtrail-hunt-findings``) and the
    table's summary with them as a Markdown artifact (``cloudtrail-hunt-report``); each
    finding is a problem of the run. ``now``: the run's clock, for replays and tests.
    """
    logger = get_run_logger()
    clock = now or datetime.now(UTC)
    since = clock - timedelta(days=lookback_days)
    run = run_hunt(dest, since=since, until=clock, names=queries or ())
    problems = run.finding_problems() + run.problems
    for problem in problems:
        logger.warning("%s: %s", problem.key, problem.reason)
    create_table_artifact(
        key="cloudtrail-hunt-findings",
        table=findings_table(run) or [{"question": "none", "events": 0}],
        description=f"{len(run.findings)} of {len(run.questions)} questions found events "
        f"since {since:%Y-%m-%d %H:%M} UTC",
    )
    create_markdown_artifact(
        key="cloudtrail-hunt-report",
        markdown=render_markdown(summarise(dest, since), run),
        description=f"{len(run.flagged_event_ids):,} events flagged",
    )
    summary = run.as_json()
    summary["problems_count"] = len(problems)
    summary["problems"] = [p.as_dict() for p in problems]
    return summary
