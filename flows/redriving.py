"""Re-drive quarantined log objects: convert what has become convertible, keep the rest.

After a fix (a decoder that now reads a time format, an object re-uploaded whole),
``run_redrive`` works through ``DEST/_quarantine/*.jsonl``. For each file it
re-reads the objects, converts only the records the quarantine names (and, for a
damaged object, every record after the damage), writes them into the events table,
and then rewrites the file with what is still not convertible (or removes it).

Exactly once, as for ingest: each partition is written under its lease (a
re-drive waits for an ingest or compaction holding it), data is written before
the quarantine file is rewritten, the Parquet file names derive from what is
re-driven, and eventIDs already in a partition (its eventID index) are dropped.
A re-drive killed half way and run again converts each record once; a re-drive
with nothing newly convertible writes nothing.

An object whose size changed since it was quarantined was replaced: ingest sees it
as new and converts it, so its entry is dropped here. One with the same size but
other bytes is converted whole (eventIDs already in the table are dropped).
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import polars as pl
from fsspec.core import url_to_fs

from flows.aws import storage_options
from flows.batch import EVENTS_FOLDER, SCHEMA_OF_TABLE, TABLE_OF_KIND, write_new_events
from flows.event_index import KnownEventIds
from flows.lock import partition_lock
from flows.quarantine import (
    QUARANTINE_FOLDER,
    now_utc,
    quarantine_files,
    read_quarantine_file,
    rewrite_quarantine_file,
)
from flows.report import MAX_LISTED_PROBLEMS
from flows.settings import Settings
from flows.storage import Storage
from schemas.cloudtrail import EVENTS, TableSchema
from transforms.convert import LogBytes, RecordSelection, convert_objects
from transforms.errors import PipelineError, Problem, UnrecognisedKeyError
from transforms.events import split_partitions
from transforms.keys import parse_key, partition_path
from transforms.parquet import batch_id, part_file_name
from transforms.quarantine import (
    QuarantineEntry,
    after_redrive,
    digest,
    problems_of,
    selection_of,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (quarantine files done, files to do)."""


@dataclass
class RedriveOutcome:
    """What re-driving one quarantine file (or all of them) did."""

    objects_seen: int = 0
    objects_cleared: int = 0
    objects_replaced: int = 0
    objects_missing: int = 0
    events_written: int = 0
    duplicates_dropped: int = 0
    files_written: int = 0
    partitions: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    """What is still quarantined (and why), plus objects that could not be read now."""
    still_quarantined: int = 0
    records_still_quarantined: int = 0

    def add(self, other: RedriveOutcome) -> None:
        for name in (
            "objects_seen",
            "objects_cleared",
            "objects_replaced",
            "objects_missing",
            "events_written",
            "duplicates_dropped",
            "files_written",
            "still_quarantined",
            "records_still_quarantined",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.partitions.update(other.partitions)
        self.problems.extend(other.problems)


@dataclass
class RedriveSummary:
    quarantine: str
    events_table: str
    files_seen: int = 0
    outcome: RedriveOutcome = field(default_factory=RedriveOutcome)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        done = self.outcome
        return {
            "quarantine": self.quarantine,
            "events_table": self.events_table,
            "quarantine_files": self.files_seen,
            "objects_seen": done.objects_seen,
            "objects_cleared": done.objects_cleared,
            "objects_replaced": done.objects_replaced,
            "objects_missing": done.objects_missing,
            "still_quarantined": done.still_quarantined,
            "records_still_quarantined": done.records_still_quarantined,
            "events_written": done.events_written,
            "duplicates_dropped": done.duplicates_dropped,
            "partitions_written": len(done.partitions),
            "files_written": done.files_written,
            "problems_count": len(done.problems),
            "problems": [p.as_dict() for p in done.problems[:MAX_LISTED_PROBLEMS]],
            "seconds": round(self.seconds, 3),
        }


def run_redrive(
    dest_url: str,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    redrive_one: Callable[..., RedriveOutcome] | None = None,
) -> RedriveSummary:
    """Re-drive every quarantine file under ``dest_url``; return what it did."""
    settings = settings or Settings()
    started = time.perf_counter()
    dest = Storage(dest_url, settings=settings)  # retries, credentials, SSE-KMS on its PUTs
    known = KnownEventIds(dest)  # one eventID index per partition, across quarantine files
    summary = RedriveSummary(
        quarantine=dest.url(dest.path(QUARANTINE_FOLDER)),
        events_table=dest.url(dest.path(EVENTS_FOLDER)),
    )
    files = list(quarantine_files(dest))
    summary.files_seen = len(files)
    step = redrive_one or redrive_file
    if progress:
        progress(0, len(files))
    for done, path in enumerate(files, start=1):
        summary.outcome.add(step(dest, path, settings=settings, known=known))
        if progress:
            progress(done, len(files))
    summary.seconds = time.perf_counter() - started
    return summary


def redrive_file(
    dest: Storage, path: str, *, settings: Settings, known: KnownEventIds | None = None
) -> RedriveOutcome:
    """Re-drive the objects of one quarantine file and rewrite it with what remains."""
    outcome = RedriveOutcome()
    known = known or KnownEventIds(dest)
    try:
        entries = read_quarantine_file(dest, path)
    except PipelineError as error:
        outcome.problems.append(Problem(error.key or dest.url(path), error.reason))
        return outcome
    outcome.objects_seen = len(entries)
    fetched = read_objects([e.url for e in entries], settings)
    remaining: list[QuarantineEntry] = []
    retried: list[tuple[QuarantineEntry, LogBytes]] = []
    for entry in entries:
        data = fetched[entry.url]
        if isinstance(data, FileNotFoundError):
            outcome.objects_missing += 1
            remaining.append(entry)
            outcome.problems.append(Problem(entry.url, "quarantined object no longer exists"))
            continue
        if not isinstance(data, bytes):
            remaining.append(entry)  # A storage fault: the next re-drive tries again.
            outcome.problems.append(Problem(entry.url, f"could not read object: {data!r}"))
            continue
        if len(data) != entry.size:
            # A new version, converted whole here: its day folder may be closed, and a
            # closed folder is never listed by ingest again. eventIDs already in keep out.
            outcome.objects_replaced += 1
        same_bytes = len(data) == entry.size and digest(data) == entry.sha256
        only: RecordSelection | None = selection_of(entry) if same_bytes else None
        retried.append((entry, LogBytes(entry.url, data, _region_of(entry.url), only)))

    name = "r" + batch_id(
        f"{item.key}#{_named(item.only)}#{digest(item.data)}" for _, item in retried
    )
    now = now_utc()
    # Each object goes back to the table of its kind (API events or Insights), as in ingest.
    by_table: dict[str, list[tuple[QuarantineEntry, LogBytes]]] = {}
    for entry, item in retried:
        by_table.setdefault(_schema_of(entry.url).name, []).append((entry, item))
    for table, group in by_table.items():
        schema = SCHEMA_OF_TABLE[table]
        converted = convert_objects((item for _, item in group), schema)
        outcome.duplicates_dropped += converted.placed.duplicates_dropped
        _write_events(
            dest,
            schema,
            converted.placed.events,
            name=name,
            row_group_rows=settings.row_group_rows,
            outcome=outcome,
            known=known,
        )
        for entry, item in group:
            left = after_redrive(entry, converted, item.data, now)
            if left is None:
                outcome.objects_cleared += 1
            else:
                remaining.append(left)
    unread = {p.key for p in outcome.problems}
    for entry in remaining:
        if entry.url not in unread:
            outcome.problems.extend(problems_of(entry))
    outcome.still_quarantined = len(remaining)
    outcome.records_still_quarantined = sum(len(e.records) for e in remaining)
    # After the data: a re-drive killed before this line is redone whole, to the same files.
    rewrite_quarantine_file(dest, path, remaining)
    log.info(
        "%s: %d objects re-driven, %d cleared, %d events written",
        posixpath.basename(path),
        len(retried),
        outcome.objects_cleared,
        outcome.events_written,
    )
    return outcome


def read_objects(urls: Sequence[str], settings: Settings) -> dict[str, bytes | Exception]:
    """Fetch objects named by URL (any filesystem); a failed read is returned, not raised."""
    groups: dict[int, tuple[fsspec.AbstractFileSystem, dict[str, str]]] = {}
    for url in urls:
        fs, path = url_to_fs(url, **storage_options(url, settings))
        groups.setdefault(id(fs), (fs, {}))[1][path] = url
    fetched: dict[str, bytes | Exception] = {}
    for fs, by_path in groups.values():
        paths = list(by_path)
        found = fs.cat(paths, on_error="return")
        if not isinstance(found, dict):
            found = {paths[0]: found}
        for path, url in by_path.items():
            fetched[url] = found.get(path, FileNotFoundError(url))
    return fetched


def _named(only: RecordSelection | None) -> str:
    """A selection as stable text: part of the re-drive's file names."""
    if only is None:
        return "all"
    return f"{sorted(only.positions)}+{only.rest_from}"


def _schema_of(url: str) -> TableSchema:
    try:
        return TABLE_OF_KIND.get(parse_key(url).kind, EVENTS)
    except UnrecognisedKeyError:
        return EVENTS


def _region_of(url: str) -> str | None:
    try:
        return parse_key(url).region
    except UnrecognisedKeyError:
        return None


def _write_events(
    dest: Storage,
    schema: TableSchema,
    events: pl.DataFrame,
    *,
    name: str,
    row_group_rows: int,
    outcome: RedriveOutcome,
    known: KnownEventIds,
) -> None:
    """Write re-driven events into their partitions, each under its lease, as ingest does.

    A partition another writer holds (an ingest, a compaction) is waited for, up to
    ``CTPARQUET_LOCK_WAIT_SECONDS``; eventIDs already in it are dropped, through the
    partition's eventID index.
    """
    for (region, year, month, day), part in split_partitions(events).items():
        partition = partition_path(region, year, month, day)
        folder = dest.path(schema.name, partition)
        target = posixpath.join(folder, part_file_name(name))
        with partition_lock(dest, f"{schema.name}/{partition}") as lease:
            written, _ = write_new_events(
                dest, schema, folder, target, part,
                lease=lease, known=known, rows=row_group_rows,
            )  # fmt: skip
        outcome.duplicates_dropped += part.height - written
        if written:
            outcome.events_written += written
            outcome.files_written += 1
            outcome.partitions.add(partition)
