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
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date

import polars as pl
import pyarrow.dataset as ds

from flows.lock import Lease, LockTimeoutError, partition_lock
from flows.quarantine import now_utc, write_quarantine
from flows.report import BatchOutcome
from flows.state import record_converted
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import DEDUP_COLUMN, EVENTS, TableSchema
from schemas.insights import INSIGHTS
from transforms.convert import ConvertedBatch, LogBytes, convert_objects
from transforms.errors import Problem
from transforms.events import drop_known_events, split_partitions
from transforms.keys import LogObject, ObjectKind, partition_path
from transforms.parquet import batch_id, part_file_name, to_parquet
from transforms.quarantine import QuarantineEntry, quarantine_entries
from transforms.reconcile import BatchCounts, ConvertedObject, TableFile

log = logging.getLogger(__name__)

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
        for key, events in split_partitions(placed.events).items():
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
    known.refresh(folder)  # files other writers added (or compaction removed)
    events = drop_known_events(
        batch_events, known.duplicates(folder, target, batch_events[DEDUP_COLUMN])
    )
    written = events.height
    outcome.duplicates_dropped += batch_events.height - written
    if written == 0:
        if dest.exists(target):  # An earlier run of this batch wrote what others hold.
            dest.remove(target)
        known.forget(folder, target)
        return
    data = to_parquet(events, row_group_rows=rows, schema=schema)
    lease.keep()
    dest.write_atomically(target, data)
    known.wrote(folder, target, events[DEDUP_COLUMN])
    prepared.files.append(
        TableFile(f"{table}/{partition}/{part_file_name(prepared.name)}", written, len(data))
    )
    outcome.files_written += 1
    outcome.bytes_written += len(data)
    if schema is INSIGHTS:
        outcome.insight_events_written += written
        outcome.insight_partitions.add(partition)
    else:
        outcome.events_written += written
        outcome.partitions.add(partition)


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


class KnownEventIds:
    """Which eventIDs each partition file holds, for the whole run, in little memory.

    Checking a batch against the files already in its partitions keeps a
    redelivered event out; reading those files again for every batch made a run
    quadratic in partition size. The index keeps a 64-bit hash per event (8 bytes,
    not ~50), per file so a batch never counts the file it is about to replace (a
    rerun's own earlier output). A hash hit is confirmed against the file's real
    eventIDs, so a collision can never drop an event.
    """

    MAX_PARTITIONS = 32
    """Partitions kept in memory; older ones are read again if touched again (memory stays
    flat over a long run)."""

    def __init__(self, dest: Storage) -> None:
        self._dest = dest
        self._by_folder: OrderedDict[str, dict[str, pl.Series]] = OrderedDict()

    def duplicates(self, folder: str, own_file: str, event_ids: pl.Series) -> pl.Series:
        """Those of ``event_ids`` already in the partition's other files."""
        wanted = _hashes(event_ids).implode()
        suspects = [
            path
            for path, hashes in self._files(folder).items()
            if path != own_file and hashes.is_in(wanted).any()
        ]
        if not suspects:
            return event_ids.clear()
        held = pl.concat([self._read_ids(path) for path in suspects])
        return event_ids.filter(event_ids.is_in(held.implode())).unique()

    def refresh(self, folder: str) -> None:
        """Match the partition's files as they are now: read new ones, forget removed ones."""
        if folder not in self._by_folder:
            self._files(folder)  # read in full just now: nothing to catch up on
            return
        files = self._files(folder)
        present = {
            stored.path
            for stored in (self._dest.list_files(folder) if self._dest.exists(folder) else [])
            if stored.path.endswith(".parquet")
        }
        for path in set(files) - present:
            del files[path]
        for path in present - set(files):
            files[path] = _hashes(self._read_ids(path))

    def wrote(self, folder: str, path: str, event_ids: pl.Series) -> None:
        self._files(folder)[path] = _hashes(event_ids)

    def forget(self, folder: str, path: str) -> None:
        self._files(folder).pop(path, None)

    def _files(self, folder: str) -> dict[str, pl.Series]:
        if folder in self._by_folder:
            self._by_folder.move_to_end(folder)
        else:
            self._by_folder[folder] = self._read(folder)
            if len(self._by_folder) > self.MAX_PARTITIONS:
                self._by_folder.popitem(last=False)
        return self._by_folder[folder]

    def _read(self, folder: str) -> dict[str, pl.Series]:
        if not self._dest.exists(folder):
            return {}
        return {
            stored.path: _hashes(self._read_ids(stored.path))
            for stored in self._dest.list_files(folder)
            if stored.path.endswith(".parquet")
        }

    def _read_ids(self, path: str) -> pl.Series:
        table = ds.dataset(path, filesystem=self._dest.fs, format="parquet")
        ids = pl.from_arrow(table.to_table(columns=[DEDUP_COLUMN]).column(DEDUP_COLUMN))
        assert isinstance(ids, pl.Series)
        return ids.drop_nulls()


def _hashes(event_ids: pl.Series) -> pl.Series:
    return event_ids.drop_nulls().hash(seed=0)
