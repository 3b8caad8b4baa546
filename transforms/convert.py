"""One batch of log objects' bytes -> placed, de-duplicated events and their problems."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.cloudtrail import EVENTS, TableSchema
from transforms.decode import MAX_INFLATED_BYTES, decompress, split_records
from transforms.errors import Problem
from transforms.events import PlacedEvents, place_events
from transforms.records import (
    RecordRows,
    collector_paused,
    is_utf8,
    read_document,
    read_records,
)


@dataclass(frozen=True)
class RecordSelection:
    """Some records of an object: the listed positions, and every one from ``rest_from`` on."""

    positions: frozenset[int] = frozenset()
    rest_from: int | None = None

    def __contains__(self, position: object) -> bool:
        return position in self.positions or (
            self.rest_from is not None and isinstance(position, int) and position >= self.rest_from
        )


@dataclass(frozen=True)
class LogBytes:
    """An object's key, its bytes, and the region folder it was delivered to."""

    key: str
    data: bytes
    region: str | None = None
    only: RecordSelection | None = None
    """Convert only these records (re-driving what an earlier run could not); None: all."""


@dataclass
class ConvertedBatch:
    placed: PlacedEvents
    unreadable: set[str] = field(default_factory=set)
    """Keys of objects of which not a single record could be read."""
    records_before_damage: dict[str, int] = field(default_factory=dict)
    """For each object that could not be read whole: how many records came before the damage."""
    sha256: dict[str, str] = field(default_factory=dict)
    """Hex SHA-256 of each object's uncompressed content, as CloudTrail's digests name it."""
    records_in: dict[str, int] = field(default_factory=dict)
    """Records read from each object (rows, and records that could not be decoded)."""

    @property
    def problems(self) -> list[Problem]:
        return self.placed.problems


def convert_objects(
    objects: Iterable[LogBytes],
    schema: TableSchema = EVENTS,
    *,
    max_object_bytes: int = MAX_INFLATED_BYTES,
) -> ConvertedBatch:
    """Decode, shape and place the records of a batch of objects; bad input never raises.

    ``max_object_bytes``: most bytes one object may inflate to (a decompression bomb
    is reported, not inflated).
    """
    with collector_paused():
        return _convert_objects(objects, schema, max_object_bytes)


def _convert_objects(
    objects: Iterable[LogBytes], schema: TableSchema, max_object_bytes: int
) -> ConvertedBatch:
    records = RecordRows(schema)
    regions: list[str | None] = []
    object_problems: list[Problem] = []
    unreadable: set[str] = set()
    before_damage: dict[str, int] = {}
    sha256: dict[str, str] = {}
    records_in: dict[str, int] = {}
    for log in objects:
        document, inflate_problem = decompress(log.data, max_object_bytes)
        # Hashed here, where the inflated bytes exist anyway: verify checks digests without
        # reading the object again (about 2% of a batch's time).
        sha256[log.key] = hashlib.sha256(document).hexdigest()
        seen = len(records) + len(records.problems)
        utf8 = is_utf8(document)  # checked once: the records' spans are slices of it
        whole = log.only is None and inflate_problem is None and utf8
        if whole and read_document(document, log.key, records, utf8_checked=True):
            regions.append(log.region)
            records_in[log.key] = len(records) + len(records.problems) - seen
            continue
        decoded = split_records(document)
        problems = (inflate_problem, None if inflate_problem and not document else decoded.problem)
        reason = "; ".join(p for p in problems if p)
        if reason:
            object_problems.append(Problem(log.key, reason))
            before_damage[log.key] = len(decoded.records)
            if not decoded.records:
                unreadable.add(log.key)
        read_records(decoded.records, log.key, records, only=log.only, utf8_checked=utf8)
        regions.append(log.region)
        records_in[log.key] = len(records) + len(records.problems) - seen
    placed = place_events(records, regions)
    placed.problems[:0] = object_problems + records.problems
    return ConvertedBatch(placed, unreadable, before_damage, sha256, records_in)
