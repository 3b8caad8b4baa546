"""The hunt: run the pack's security questions over the table, locally or on a schedule.

``run_hunt`` is the whole job as plain Python: every question of ``schemas.hunts``,
its time window filled in, goes through the same path as ``ctparquet query``
(sqlglot Trino -> DuckDB over the table's pyarrow dataset), except that the
window's events are read once into a scratch DuckDB table rather than once per
question (41 scans of the payload columns took 10x longer). A question with rows
is a finding. The Prefect flow ``cloudtrail-hunt`` runs the same function daily,
publishes the findings as a table artifact and the table's summary as a Markdown
artifact, and reports each finding as a problem of the run.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from flows.query import VIEW, QueryError, table_dataset, to_duckdb_sql
from flows.storage import Storage
from schemas.hunts import BEGINNING, Hunt, select_hunts
from transforms.errors import Problem

log = logging.getLogger(__name__)

EVENT_IDS_LISTED = 100
"""Event IDs a finding lists in the JSON summary; its count is always complete."""


@dataclass
class Finding:
    """A question that returned rows."""

    hunt: Hunt
    rows: pa.Table
    seconds: float

    @property
    def event_ids(self) -> list[str]:
        return [str(e) for e in self.rows.column("eventid").to_pylist() if e is not None]

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.hunt.name,
            "title": self.hunt.title,
            "techniques": list(self.hunt.techniques),
            "severity": self.hunt.severity,
            "count": self.rows.num_rows,
            "event_ids": self.event_ids[:EVENT_IDS_LISTED],
        }


@dataclass
class HuntRun:
    """What one hunt over the table found."""

    dest: str
    since: datetime
    until: datetime | None
    questions: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """Questions that could not run (the others still did)."""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def flagged_event_ids(self) -> set[str]:
        return {e for f in self.findings for e in f.event_ids}

    def finding_problems(self) -> list[Problem]:
        """Each finding as a problem of the run (how the scheduled flow reports them)."""
        return [
            Problem(
                f"hunt:{f.hunt.name}",
                f"{f.rows.num_rows} events: {f.hunt.title} "
                f"({f.hunt.severity}; {', '.join(f.hunt.techniques)})",
            )
            for f in self.findings
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "dest": self.dest,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "questions_run": len(self.questions),
            "findings_count": len(self.findings),
            "events_flagged": len(self.flagged_event_ids),
            "findings": [f.as_json() for f in self.findings],
            "problems_count": len(self.problems),
            "problems": [p.as_dict() for p in self.problems],
            "seconds": round(self.seconds, 3),
        }


def window(since: date | None, until: date | None) -> tuple[datetime, datetime | None]:
    """The window's bounds in UTC: a date ``since`` from the start of that day, a date
    ``until`` through the end of that day; a datetime is taken as it is."""
    start = BEGINNING if since is None else _at(since)
    if until is None:
        return start, None
    end = _at(until) if isinstance(until, datetime) else _at(until) + timedelta(days=1)
    return start, end


def _at(day: date) -> datetime:
    if isinstance(day, datetime):
        return day if day.tzinfo else day.replace(tzinfo=UTC)
    return datetime.combine(day, day_time(), tzinfo=UTC)


def run_hunt(
    dest_url: str,
    *,
    since: date | None = None,
    until: date | None = None,
    names: list[str] | tuple[str, ...] = (),
) -> HuntRun:
    """Run the pack's questions (all, or those ``names``) over the events under ``dest_url``."""
    started = time.perf_counter()
    hunts = select_hunts(names)
    start, end = window(since, until)
    run = HuntRun(dest=dest_url, since=start, until=end)
    rendered = [(h, h.render({"window_start": start, "window_end": end})) for h in hunts]
    with tempfile.TemporaryDirectory(prefix="ctparquet-hunt-") as scratch:
        connection = duckdb.connect(str(Path(scratch) / "window.duckdb"))
        try:
            _load_window(connection, Storage(dest_url), start, end, [sql for _, sql in rendered])
            for hunt, sql in rendered:
                _ask(connection, hunt, sql, run)
        finally:
            connection.close()
    run.seconds = time.perf_counter() - started
    log.info(
        "hunt: %d questions, %d findings, %d events flagged",
        len(run.questions),
        len(run.findings),
        len(run.flagged_event_ids),
    )
    return run


def _load_window(
    connection: duckdb.DuckDBPyConnection,
    dest: Storage,
    start: datetime,
    end: datetime | None,
    sqls: list[str],
) -> None:
    """Read the window's events once, only the columns the questions name, into a DuckDB
    table of the name ``ctparquet query`` gives the table: the questions then run on it
    as ``query`` would run them, without scanning the Parquet files once per question."""
    dataset = table_dataset(dest)
    text = "\n".join(sqls)
    columns = [n for n in dataset.schema.names if re.search(rf"\b{n}\b", text)]
    connection.register("hunt_source", dataset)
    connection.execute(
        f"CREATE TABLE {VIEW} AS SELECT {', '.join(columns)} FROM hunt_source "
        "WHERE eventtimestamp >= ? AND eventtimestamp < ?",
        [start, end or datetime(9999, 1, 1, tzinfo=UTC)],
    )
    connection.unregister("hunt_source")


def _ask(connection: duckdb.DuckDBPyConnection, hunt: Hunt, sql: str, run: HuntRun) -> None:
    """One question, translated like any ``ctparquet query``; a failure is a problem."""
    asked = time.perf_counter()
    try:
        table = connection.sql(to_duckdb_sql(sql)).to_arrow_table()
    except (QueryError, duckdb.Error) as error:
        run.problems.append(Problem(f"hunt:{hunt.name}", f"the question failed: {error}"))
        return
    seconds = time.perf_counter() - asked
    run.questions.append(hunt.name)
    run.timings[hunt.name] = seconds
    if table.num_rows:
        run.findings.append(Finding(hunt, table, seconds))


def findings_table(run: HuntRun) -> list[dict[str, Any]]:
    """The findings as rows for a Prefect table artifact."""
    return [
        {
            "question": f.hunt.name,
            "title": f.hunt.title,
            "severity": f.hunt.severity,
            "techniques": ", ".join(f.hunt.techniques),
            "events": f.rows.num_rows,
            "first_event_ids": ", ".join(f.event_ids[:5]),
        }
        for f in run.findings
    ]
