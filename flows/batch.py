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
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from flows.event_index import KnownEventIds
from flows.lock import Lease, LockTimeoutError, partition_lock
from flows.quarantine import now_utc, write_quarantine
from flows.report import BatchOutcome
from flows.state import record_converted
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import DEDUP_COLUMN, EVENTS, TableSchema
from schemas.insights import INSIGHTS
from transforms.convert import ConvertedBatch, LogBytes, convert_objects
from transforms.errors import Problem
from transforms.events import drop_known_events
from transforms.keys import LogObject, ObjectKind, partition_path
from transforms.parquet import batch_id, part_file_name, to_parquet
from transforms.quarantine import QuarantineEntry, quarantine_entries
from transforms.reconcile import BatchCounts, ConvertedObject, TableFile

log = logging.getLogger(__name__)

__all__ = ["KnownEventIds", "PendingObject", "PreparedBatch", "commit_batch", "convert_batch"]

EVENTS_FOLDER = EVENTS.name
INSIGHTS_FOLDER = INSIGHTS.name
TABLE_OF_KIND: dict[ObjectKind, TableSchema] = {"events": EVENTS, "insight": INSIGHTS}
"""The table each kind of log object is converted into (digests hold no events)."""
SCHEMA_OF_TABLE = {schema.name: schema for schema in TABLE_OF_KIND.values()}


@dataclass(frozen=True)
class PendingObject:
    """A log object waiting to be converted."""

    stored: StoredObject
    url: str
    log: LogObject


@dataclass
class PreparedBatch:
    """A batch read and decoded, its events placed in partitions, not yet written."""

    name: str
    outcome: BatchOutcome
    readable: list[tuple[str, StoredObject]]
    partitions: dict[tuple[str, str, str, str, str], pl.DataFrame] = field(default_factory=dict)
    """Each partition's events, by (table, region, year, month, day); encoded once, at
    commit, after the events already in the table are dropped."""
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    """What could not be converted, written beside the table when the batch commits."""
    converted: list[tuple[date, ConvertedObject]] = field(default_factory=list)
    """Each object read, by its delivery day, for the batch's conversion records."""
    files: list[TableFile] = field(default_factory=list)
    """The files written at commit, with their rows and bytes."""


def prepare_batch(source: Storage, batch: list[PendingObject]) -> PreparedBatch:
    """Read and convert a batch: decode, shape, place; nothing written yet."""
    outcome = BatchOutcome()
    fetched = source.read_many([item.stored.path for item in batch])
    inputs: dict[ObjectKind, list[LogBytes]] = {kind: [] for kind in TABLE_OF_KIND}
    readable: list[tuple[str, StoredObject]] = []
    pending = {item.url: item for item in batch}
    for item in batch:
        data = fetched.get(item.stored.path)
        if not isinstance(data, bytes):
            # Not recorded as converted: the next run tries it again.
            outcome.problems.append(Problem(item.url, f"could not read object: {data!r}"))
            continue
        outcome.bytes_read += len(data)
        inputs[item.log.kind].append(LogBytes(item.url, data, item.log.region))
        readable.append((item.url, item.stored))

    prepared = PreparedBatch(batch_id(item.url for item in batch), outcome, readable)
    for kind, schema in TABLE_OF_KIND.items():
        if not inputs[kind]:
            continue
        converted = convert_objects(inputs[kind], schema)
        prepared.quarantine += quarantine_entries(converted, inputs[kind], prepared.name, now_utc())
        placed = converted.placed
        outcome.objects_converted += len(inputs[kind]) - len(converted.unreadable)
        outcome.events_read += placed.records_read
        outcome.duplicates_dropped += placed.duplicates_dropped
        outcome.problems.extend(placed.problems)
        for key, events in placed.partitions().items():
            prepared.partitions[(schema.name, *key)] = events
        prepared.converted += _converted_objects(converted, inputs[kind], pending, prepared.name)
    return prepared


def _converted_objects(
    converted: ConvertedBatch,
    inputs: list[LogBytes],
    pending: dict[str, PendingObject],
    batch: str,
) -> list[tuple[date, ConvertedObject]]:
    """What the conversion records say of each object: version, content hash, counts."""
    quarantined: Counter[str] = Counter()
    damage: dict[str, list[str]] = {}
    for problem in converted.problems:
        if problem.record is None:
            damage.setdefault(problem.key, []).append(problem.reason)
        else:
            quarantined[problem.key] += 1
    found = []
    for log in inputs:
        item = pending[log.key]
        entry = ConvertedObject(
            url=log.key,
            size=item.stored.size,
            etag=item.stored.etag,
            sha256=converted.sha256.get(log.key),
            records=converted.records_in.get(log.key, 0),
            quarantined=quarantined[log.key],
            batch=batch,
            problem="; ".join(damage[log.key]) if log.key in damage else None,
        )
        found.append((item.log.delivery_date, entry))
    return found


def commit_batch(
    dest: Storage,
    prepared: PreparedBatch,
    *,
    row_group_rows: int,
    known: KnownEventIds | None = None,
) -> BatchOutcome:
    """Write a prepared batch into its tables, then mark its objects converted.

    One writer per partition at a time (parallel workers, other runs and backfill units
    wait for the partition's lease), so the check against events already in a
    partition sees every file written before.
    """
    outcome = prepared.outcome
    known = known or KnownEventIds(dest)
    # Partitions whose lease another writer holds (a parallel worker, another run) come
    # last: by then that writer has usually moved on, and nobody waited meanwhile.
    busy = []
    for key, part in prepared.partitions.items():
        try:
            with partition_lock(dest, _lock_name(key), wait=0) as lease:
                _commit_partition(
                    dest, prepared, key, part,
                    lease=lease, known=known, outcome=outcome, rows=row_group_rows,
                )  # fmt: skip
        except LockTimeoutError:
            busy.append((key, part))
    for key, part in busy:
        with partition_lock(dest, _lock_name(key)) as lease:
            _commit_partition(
                dest, prepared, key, part,
                lease=lease, known=known, outcome=outcome, rows=row_group_rows,
            )  # fmt: skip

    # What the batch could not convert is named beside the table after its data and
    # before its state, so a batch marked done has its failures on record.
    outcome.objects_quarantined = write_quarantine(dest, prepared.name, prepared.quarantine)
    counts = BatchCounts(
        batch=prepared.name,
        record="",
        records=sum(entry.records for _, entry in prepared.converted),
        quarantined=sum(entry.quarantined for _, entry in prepared.converted),
        duplicates=outcome.duplicates_dropped,
        files=tuple(prepared.files),
    )
    record_converted(dest, prepared.name, prepared.converted, counts, outcome.events_written)
    outcome.converted_urls = [url for url, _ in prepared.readable]
    log.info(
        "batch %s: %d objects, %d events written",
        prepared.name,
        len(prepared.readable),
        outcome.events_written,
    )
    return outcome


def _lock_name(key: tuple[str, str, str, str, str]) -> str:
    table, region, year, month, day = key
    return f"{table}/{partition_path(region, year, month, day)}"


def _commit_partition(
    dest: Storage,
    prepared: PreparedBatch,
    key: tuple[str, str, str, str, str],
    batch_events: pl.DataFrame,
    *,
    lease: Lease,
    known: KnownEventIds,
    outcome: BatchOutcome,
    rows: int,
) -> None:
    """Write one partition's events of a batch, under its lease, minus those already there."""
    table, region, year, month, day = key
    schema = SCHEMA_OF_TABLE[table]
    partition = partition_path(region, year, month, day)
    folder = dest.path(table, partition)
    target = posixpath.join(folder, part_file_name(prepared.name))
    written, size = write_new_events(
        dest, schema, folder, target, batch_events, lease=lease, known=known, rows=rows
    )
    outcome.duplicates_dropped += batch_events.height - written
    if written == 0:
        return
    prepared.files.append(
        TableFile(f"{table}/{partition}/{part_file_name(prepared.name)}", written, size)
    )
    outcome.files_written += 1
    outcome.bytes_written += size
    if schema is INSIGHTS:
        outcome.insight_events_written += written
        outcome.insight_partitions.add(partition)
    else:
        outcome.events_written += written
        outcome.partitions.add(partition)


def write_new_events(
    dest: Storage,
    schema: TableSchema,
    folder: str,
    target: str,
    events: pl.DataFrame,
    *,
    lease: Lease,
    known: KnownEventIds,
    rows: int,
) -> tuple[int, int]:
    """Write to ``target`` the events its partition does not hold yet; (events, bytes) written.

    Under the partition's lease (every writer: ingest, backfill, redrive): bring the
    partition's eventID index up to date, write the data file, then the index. A run
    killed between the two leaves a file the index does not cover; the next writer reads it.
    """
    known.refresh(folder)  # files other writers added (or compaction replaced)
    new = drop_known_events(events, known.duplicates(folder, target, events[DEDUP_COLUMN]))
    if new.height == 0:
        if known.holds_file(folder, target):  # An earlier run wrote what others hold.
            lease.keep()
            dest.remove(target)
            known.forget(folder, target)
        lease.keep()
        known.save(folder)  # if it changed: files read now need not be read again
        return 0, 0
    data = to_parquet(new, row_group_rows=rows, schema=schema)
    lease.keep()
    dest.write_atomically(target, data)
    known.wrote(folder, target, new[DEDUP_COLUMN], len(data))
    lease.keep()
    known.save(folder)
    return new.height, len(data)


def convert_batch(
    source: Storage,
    dest: Storage,
    batch: list[PendingObject],
    *,
    row_group_rows: int,
    known: KnownEventIds | None = None,
) -> BatchOutcome:
    """Convert ``batch`` into ``dest``'s events table and mark it converted."""
    prepared = prepare_batch(source, batch)
    return commit_batch(dest, prepared, row_group_rows=row_group_rows, known=known)
