"""The summary of a run: what the CLI prints and what ``--json`` emits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flows.aws import summarise_requests
from transforms.errors import Problem

MAX_LISTED_PROBLEMS = 1_000
"""Problems listed in a summary; the count is always complete."""


@dataclass
class OutsideWindow:
    """Delivery days a windowed ingest did not list (older than its window), and how to
    convert them: a first run over a trail with history says so instead of staying silent."""

    days: int
    first: date
    last: date
    command: str
    """The ``ctparquet backfill`` that converts them, with the run's SOURCE and DEST."""

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "command": self.command,
        }


@dataclass
class RunSummary:
    source: str
    events_table: str
    """The events table's root URL; empty when no such folder exists (nothing written yet)."""
    insights_table: str = ""
    objects_seen: int = 0
    objects_converted: int = 0
    events_read: int = 0
    events_written: int = 0
    insight_events_written: int = 0
    duplicates_dropped: int = 0
    objects_quarantined: int = 0
    objects_skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    insight_partitions: set[str] = field(default_factory=set)
    files_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    workers: str = ""
    """What converted the batches: "2 processes", "2 threads", "1 (this process)"."""
    catalog: list[dict[str, Any]] = field(default_factory=list)
    """What the Glue registration after the run did, one entry per table (when configured)."""
    days_listed: int = 0
    days_complete: int = 0
    """Of the folders listed, those already complete (listed all the same: ADR 0013)."""
    days_pending: int = 0
    """Of the folders listed, those with an object whose read had failed before."""
    objects_late: int = 0
    """Objects found behind their folder's mark: they arrived after the listing passed them."""
    days_outside_window: OutsideWindow | None = None
    units: int | None = None
    """Backfill units planned (None for ingest)."""
    units_failed: int = 0
    source_requests: Counter[str] = field(default_factory=Counter)
    """S3 requests to the log bucket, by operation (batches run elsewhere add theirs)."""
    table_requests: Counter[str] = field(default_factory=Counter)
    """S3 requests to the table's bucket (data, state, locks), by operation."""

    def add(self, other: BatchOutcome | RunSummary) -> None:
        self.objects_converted += other.objects_converted
        self.events_read += other.events_read
        self.events_written += other.events_written
        self.insight_events_written += other.insight_events_written
        self.duplicates_dropped += other.duplicates_dropped
        self.objects_quarantined += other.objects_quarantined
        self.problems.extend(other.problems)
        self.partitions.update(other.partitions)
        self.insight_partitions.update(other.insight_partitions)
        self.files_written += other.files_written
        self.bytes_read += other.bytes_read
        self.bytes_written += other.bytes_written
        self.source_requests.update(other.source_requests)
        self.table_requests.update(other.table_requests)

    def merge(self, other: RunSummary) -> None:
        """Fold in the summary of a part of this run (a backfill unit)."""
        self.add(other)  # the counters a batch has, a unit's summary has too
        self.objects_seen += other.objects_seen
        self.objects_skipped.update(other.objects_skipped)
        self.days_listed += other.days_listed
        self.days_complete += other.days_complete
        self.days_pending += other.days_pending
        self.objects_late += other.objects_late

    def as_json(self) -> dict[str, Any]:
        units = (
            {} if self.units is None else {"units": self.units, "units_failed": self.units_failed}
        )
        tables = {
            name: url
            for name, url in (
                ("events_table", self.events_table),
                ("insights_table", self.insights_table),
            )
            if url  # never a folder that does not exist
        }
        outside = self.days_outside_window
        return {
            **units,
            "source": self.source,
            **tables,
            "objects_seen": self.objects_seen,
            "objects_late": self.objects_late,
            "objects_converted": self.objects_converted,
            "objects_skipped": dict(sorted(self.objects_skipped.items())),
            "events_read": self.events_read,
            "events_written": self.events_written,
            "insight_events_written": self.insight_events_written,
            "duplicates_dropped": self.duplicates_dropped,
            "problems_count": len(self.problems),
            "objects_quarantined": self.objects_quarantined,
            "problems": [p.as_dict() for p in self.problems[:MAX_LISTED_PROBLEMS]],
            "partitions_written": len(self.partitions),
            "files_written": self.files_written,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "days_listed": self.days_listed,
            "days_complete": self.days_complete,
            "days_pending": self.days_pending,
            "days_outside_window": outside.as_json() if outside else None,
            "requests": {
                "source": summarise_requests(self.source_requests),
                "table": summarise_requests(self.table_requests),
            },
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "events_per_second": round(self.events_read / self.seconds) if self.seconds else 0,
            "catalog": self.catalog,
        }

    def to_markdown(self, title: str) -> str:
        """The run as a Markdown report (the Prefect artifact of every flow run)."""
        source = summarise_requests(self.source_requests)
        table = summarise_requests(self.table_requests)
        skipped = ", ".join(f"{n:,} {why}" for why, n in sorted(self.objects_skipped.items()))
        rows = [
            ("Source", f"`{self.source}`"),
            ("Table", f"`{self.events_table}`" if self.events_table else "none written yet"),
            (
                "Day folders listed / already complete",
                f"{self.days_listed:,} / {self.days_complete:,}",
            ),
            ("Objects seen / converted", f"{self.objects_seen:,} / {self.objects_converted:,}"),
            ("Objects skipped", skipped or "none"),
            ("Objects found late (behind the mark)", f"{self.objects_late:,}"),
            ("Events read / written", f"{self.events_read:,} / {self.events_written:,}"),
            ("Duplicate eventIDs dropped", f"{self.duplicates_dropped:,}"),
            ("Bytes in / out", f"{self.bytes_read:,} / {self.bytes_written:,}"),
            ("Partitions touched", f"{len(self.partitions):,}"),
            ("Files written", f"{self.files_written:,}"),
            ("Requests to the logs (LIST / GET / other)", _requests(source)),
            ("Requests to the table (LIST / GET / PUT / other)", _requests(table, put=True)),
            ("Problems", f"{len(self.problems):,}"),
            ("Seconds", f"{self.seconds:.1f}"),
            ("Workers", self.workers or "none (nothing to convert)"),
        ]
        if self.days_outside_window:
            outside = self.days_outside_window
            rows.append(
                (
                    "Delivery days older than the window (not listed)",
                    f"{outside.days:,} ({outside.first} to {outside.last}): `{outside.command}`",
                )
            )
        lines = [f"# {title}", "", "| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        if self.partitions:
            shown = sorted(self.partitions)[:20]
            more = len(self.partitions) - len(shown)
            lines += ["", "**Partitions:** " + ", ".join(f"`{p}`" for p in shown)]
            if more:
                lines[-1] += f" and {more:,} more"
        if self.problems:
            lines += [
                "",
                "## Problems (first 20)",
                "",
                "| object | record | reason |",
                "|---|---|---|",
            ]
            for problem in self.problems[:20]:
                record = "" if problem.record is None else str(problem.record)
                reason = problem.reason.replace("|", "\\|")
                lines.append(f"| `{problem.key}` | {record} | {reason} |")
        return "\n".join(lines) + "\n"


@dataclass
class BatchOutcome:
    """What converting one batch did."""

    objects_converted: int = 0
    events_read: int = 0
    events_written: int = 0
    insight_events_written: int = 0
    duplicates_dropped: int = 0
    objects_quarantined: int = 0
    problems: list[Problem] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    insight_partitions: set[str] = field(default_factory=set)
    files_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    converted_urls: list[str] = field(default_factory=list)
    """Objects this batch is done with (converted, or unreadable for good); a failed read is not."""
    source_requests: Counter[str] = field(default_factory=Counter)
    table_requests: Counter[str] = field(default_factory=Counter)
    """S3 requests made by a part of a run that had its own storage (a backfill unit)."""


def _requests(counts: dict[str, Any], *, put: bool = False) -> str:
    shown = [counts["list"], counts["get"]] + ([counts["put"]] if put else [])
    rest = counts["other"] + (0 if put else counts["put"])
    return " / ".join(f"{n:,}" for n in [*shown, rest])
