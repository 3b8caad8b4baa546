"""Convert one batch of log objects into the events table: read, transform, write, record.

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

from flows.lock import partition_lock
from flows.report import BatchOutcome
from flows.state import record_converted
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import DEDUP_COLUMN, SORT_COLUMN
from transforms.convert import LogBytes, convert_objects
from transforms.errors import Problem
from transforms.events import drop_known_events, split_partitions
from transforms.keys import LogObject, partition_path
from transforms.parquet import batch_id, part_file_name, to_parquet

log = logging.getLogger(__name__)

EVENTS_FOLDER = "events"


@dataclass(frozen=True)
class PendingObject:
    """A log object waiting to be converted."""

    stored: StoredObject
    url: str
    log: LogObject


def convert_batch(
    source: Storage, dest: Storage, batch: list[PendingObject], *, row_group_rows: int
) -> BatchOutcome:
    """Convert ``batch`` into ``dest``'s events table and mark it converted."""
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

    converted = convert_objects(inputs)
    placed = converted.placed
    outcome.objects_converted = len(readable) - len(converted.unreadable)
    outcome.events_read = placed.records_read
    outcome.duplicates_dropped = placed.duplicates_dropped
    outcome.problems.extend(placed.problems)

    for (region, year, month, day), events in split_partitions(placed.events).items():
        partition = partition_path(region, year, month, day)
        folder = dest.path(EVENTS_FOLDER, partition)
        target = posixpath.join(folder, part_file_name(name))
        # One writer per partition at a time, so the eventID check below sees every file
        # another run or a parallel backfill unit may be writing (docs/adr/0010).
        with partition_lock(dest, partition) as lease:
            new_events = drop_known_events(events, _known_event_ids(dest, folder, target, events))
            outcome.duplicates_dropped += events.height - new_events.height
            if new_events.is_empty():
                if dest.exists(target):  # An earlier run of this batch wrote what others now hold.
                    dest.remove(target)
                continue
            data = to_parquet(new_events, row_group_rows=row_group_rows)
            lease.keep()
            dest.write_atomically(target, data)
        outcome.events_written += new_events.height
        outcome.files_written += 1
        outcome.bytes_written += len(data)
        outcome.partitions.add(partition)

    record_converted(
        dest, name, ((item.url, item.stored) for item in readable), outcome.events_written
    )
    outcome.converted_urls = [item.url for item in readable]
    log.info("batch %s: %d objects, %d events written", name, len(readable), outcome.events_written)
    return outcome


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
