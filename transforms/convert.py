"""One batch of log objects' bytes -> placed, de-duplicated events and their problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.cloudtrail import EVENTS, TableSchema
from transforms.decode import decompress, split_records
from transforms.errors import Problem
from transforms.events import PlacedEvents, place_events
from transforms.records import RecordRows, collector_paused, read_document, read_records


@dataclass(frozen=True)
class LogBytes:
    """An object's key, its bytes, and the region folder it was delivered to."""

    key: str
    data: bytes
    region: str | None = None


@dataclass
class ConvertedBatch:
    placed: PlacedEvents
    unreadable: set[str] = field(default_factory=set)
    """Keys of objects of which not a single record could be read."""

    @property
    def problems(self) -> list[Problem]:
        return self.placed.problems


def convert_objects(objects: Iterable[LogBytes], schema: TableSchema = EVENTS) -> ConvertedBatch:
    """Decode, shape and place the records of a batch of objects; bad input never raises."""
    with collector_paused():
        return _convert_objects(objects, schema)


def _convert_objects(objects: Iterable[LogBytes], schema: TableSchema) -> ConvertedBatch:
    records = RecordRows(schema)
    regions: list[str | None] = []
    object_problems: list[Problem] = []
    unreadable: set[str] = set()
    for log in objects:
        document, inflate_problem = decompress(log.data)
        if inflate_problem is None and read_document(document, log.key, records):
            regions.append(log.region)
            continue
        decoded = split_records(document)
        reason = "; ".join(p for p in (inflate_problem, decoded.problem) if p)
        if reason:
            object_problems.append(Problem(log.key, reason))
            if not decoded.records:
                unreadable.add(log.key)
        read_records(decoded.records, log.key, records)
        regions.append(log.region)
    placed = place_events(records, regions)
    placed.problems[:0] = object_problems + records.problems
    return ConvertedBatch(placed, unreadable)
