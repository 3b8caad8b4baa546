"""Convert one batch of log objects into its tables: read, transform, write, record.

API event objects go to the events table, ``CloudTrail-Insight/`` objects to the
Insights table; both through the same transforms, each with its own schema.

Order matters for exactly-once: data files first (each moved into place whole),
the batch's state record last. A rerun of the same batch rewrites the same file
names, and events already in other files of a partition are dropped by eventID.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass

import polars as pl
import pyarrow.dataset as ds

from flows.report import BatchOutcome
from flows.state import record_converted
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import DEDUP_COLUMN, EVENTS, SORT_COLUMN, TableSchema
from schemas.insights import INSIGHTS
from transforms.convert import LogBytes, convert_objects
from transforms.errors import Problem
from transforms.events import PlacedEvents, drop_known_events, split_partitions
from transforms.keys import LogObject, ObjectKind, partition_path
from transforms.parquet import batch_id, part_file_name, to_parquet

log = logging.getLogger(__name__)

EVENTS_FOLDER = EVENTS.name
INSIGHTS_FOLDER = INSIGHTS.name
TABLE_OF_KIND: dict[ObjectKind, TableSchema] = {"events": EVENTS, "insight": INSIGHTS}
"""The table each kind of log object is converted into (digests hold no events)."""


@dataclass(frozen=True)
class PendingObject:
    """A log object waiting to be converted."""

    stored: StoredObject
    url: str
    log: LogObject


def convert_batch(
    source: Storage, dest: Storage, batch: list[PendingObject], *, row_group_rows: int
) -> BatchOutcome:
    """Convert ``batch`` into ``dest``'s events and Insights tables and mark it converted."""
    name = batch_id(item.url for item in batch)
    outcome = BatchOutcome()
    fetched = source.read_many([item.stored.path for item in batch])
    inputs: list[LogBytes] = []
    readable: list[PendingObject] = []
    for item in batch:
        data = fetched.get(item.stored.path)
        if not isinstance(data, bytes):
            # Not recorded as converted: the next run tries it again.
            outcome.problems.append(Problem(item.url, f"could not read object: {data!r}"))
            continue
        outcome.bytes_read += len(data)
        inputs.append(LogBytes(item.url, data, item.log.region))
        readable.append(item)

    for kind, schema in TABLE_OF_KIND.items():
        of_kind = [obj for obj, item in zip(inputs, readable, strict=True) if item.log.kind == kind]
        if not of_kind:
            continue
        converted = convert_objects(of_kind, schema)
        outcome.objects_converted += len(of_kind) - len(converted.unreadable)
        outcome.events_read += converted.placed.records_read
        outcome.duplicates_dropped += converted.placed.duplicates_dropped
        outcome.problems.extend(converted.placed.problems)
        _write_table(
            dest,
            schema,
            placed=converted.placed,
            name=name,
            outcome=outcome,
            row_group_rows=row_group_rows,
        )

    record_converted(
        dest, name, ((item.url, item.stored) for item in readable), outcome.events_written
    )
    log.info("batch %s: %d objects, %d events written", name, len(readable), outcome.events_written)
    return outcome


def _write_table(
    dest: Storage,
    schema: TableSchema,
    *,
    placed: PlacedEvents,
    name: str,
    outcome: BatchOutcome,
    row_group_rows: int,
) -> None:
    """Write a batch's placed events into their partitions of ``schema``'s table."""
    for (region, year, month, day), events in split_partitions(placed.events).items():
        partition = partition_path(region, year, month, day)
        folder = dest.path(schema.name, partition)
        target = posixpath.join(folder, part_file_name(name))
        new_events = drop_known_events(events, _known_event_ids(dest, folder, target, events))
        outcome.duplicates_dropped += events.height - new_events.height
        if new_events.is_empty():
            if dest.exists(target):  # An earlier run of this batch wrote what others now hold.
                dest.remove(target)
            continue
        data = to_parquet(new_events, row_group_rows=row_group_rows, schema=schema)
        dest.write_atomically(target, data)
        outcome.files_written += 1
        outcome.bytes_written += len(data)
        if schema is INSIGHTS:
            outcome.insight_events_written += new_events.height
            outcome.insight_partitions.add(partition)
        else:
            outcome.events_written += new_events.height
            outcome.partitions.add(partition)


def _known_event_ids(dest: Storage, folder: str, own_file: str, events: pl.DataFrame) -> pl.Series:
    """eventIDs already in the partition's other files, within the batch's time range."""
    empty = pl.Series(DEDUP_COLUMN, [], pl.String)
    if not dest.exists(folder):
        return empty
    others = [
        f.path
        for f in dest.list_files(folder)
        if f.path.endswith(".parquet") and f.path != own_file
    ]
    if not others:
        return empty
    low, high = events[SORT_COLUMN].min(), events[SORT_COLUMN].max()
    table = ds.dataset(others, filesystem=dest.fs, format="parquet").to_table(
        columns=[DEDUP_COLUMN],
        # Duplicates share their eventTime, and files are sorted by it: row groups outside
        # the batch's time range are skipped on their statistics.
        filter=(ds.field(SORT_COLUMN) >= low) & (ds.field(SORT_COLUMN) <= high),
    )
    known = pl.from_arrow(table.column(DEDUP_COLUMN))
    assert isinstance(known, pl.Series)
    return known.drop_nulls()
