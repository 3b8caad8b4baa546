"""The summary of a run: what the CLI prints and what ``--json`` emits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transforms.errors import Problem

MAX_LISTED_PROBLEMS = 1_000
"""Problems listed in a summary; the count is always complete."""


@dataclass
class RunSummary:
    source: str
    events_table: str
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
    catalog: list[dict[str, Any]] = field(default_factory=list)
    """What the Glue registration after the run did, one entry per table (when configured)."""

    def add(self, other: BatchOutcome) -> None:
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

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "events_table": self.events_table,
            "objects_seen": self.objects_seen,
            "objects_converted": self.objects_converted,
            "objects_skipped": dict(sorted(self.objects_skipped.items())),
            "events_read": self.events_read,
            "events_written": self.events_written,
            "insight_events_written": self.insight_events_written,
            "insights_table": self.insights_table,
            "duplicates_dropped": self.duplicates_dropped,
            "problems_count": len(self.problems),
            "objects_quarantined": self.objects_quarantined,
            "problems": [p.as_dict() for p in self.problems[:MAX_LISTED_PROBLEMS]],
            "partitions_written": len(self.partitions),
            "files_written": self.files_written,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_read / self.seconds) if self.seconds else 0,
            "catalog": self.catalog,
        }


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
