"""Convert what is new in some delivery-day folders: the engine under ingest and backfill.

For each day folder: read its state (one GET) and list it, every time: an open
folder from its mark (``StartAfter``), a closed one from its beginning, so an
object that arrives late, even with a name before the mark, is seen while its
folder is in the window. New objects are converted in bounded batches across
folders; after each batch's data is in, the state of every folder it touched is
advanced (conditional write). A read that fails is counted in the folder's
state, which stays pending (listed whatever the window) until the object is
converted or, after ``max_read_attempts``, quarantined as unreadable for
``redrive``. A run killed anywhere redoes at most its unfinished batches, and
the table's eventID check keeps each event once (docs/adr/0004, 0010, 0011, 0013).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flows.batch import TABLE_OF_KIND, KnownEventIds, PendingObject, convert_batch
from flows.listing import DayFolder
from flows.memory import release_freed_memory
from flows.quarantine import now_utc, write_quarantine
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.state import (
    DayState,
    Listed,
    UnsafeKeyError,
    advance,
    clear_pending,
    day_closed,
    day_state_path,
    load_day,
    mark_pending,
    pending_marker_path,
    save_day,
    settled,
    trail_key,
)
from flows.storage import Storage
from schemas.cloudtrail import EVENTS
from schemas.insights import INSIGHTS
from transforms.errors import Problem, UnrecognisedKeyError
from transforms.keys import parse_key
from transforms.parquet import batch_id
from transforms.quarantine import QuarantineEntry

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (objects done, objects to do) as batches finish."""


BatchRunner = Callable[
    [Iterator[list[PendingObject]]], Iterator[tuple[list[PendingObject], BatchOutcome]]
]
"""Converts batches (somewhere) and yields each with its outcome, in order."""


class BatchConverter(Protocol):
    def __call__(
        self,
        source: Storage,
        dest: Storage,
        batch: list[PendingObject],
        *,
        row_group_rows: int,
        known: KnownEventIds | None = None,
    ) -> BatchOutcome: ...


@dataclass
class DayWork:
    """One day folder in a run: its state as read, what the listing showed, what is new."""

    folder: DayFolder
    state_path: str
    state: DayState
    version: str | None
    listed: list[Listed] = field(default_factory=list)
    pending: list[PendingObject] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)
    """Names done with this run without conversion (keys that are not log objects)."""
    converted: set[str] = field(default_factory=set)
    """Names converted by this run's batches, not yet in the state."""
    unread: dict[str, str] = field(default_factory=dict)
    """Names whose read failed in this run, not yet in the state, and why."""
    trail_key: str | None = None
    """The trail folder's key under the state folders (None: derive it from an S3 key)."""
    marked_pending: bool = False
    """A pending marker names this folder (written before failures reach its state)."""


def plan_days(
    source: Storage,
    dest: Storage,
    folders: list[DayFolder],
    summary: RunSummary,
    now: datetime,
    *,
    marked_pending: Collection[DayFolder] = (),
) -> list[DayWork]:
    """Read each folder's state and list what is new in it; count everything seen.

    Every folder is listed: an open one from its mark, a closed one from its
    beginning (names its state holds as done are passed over, not counted).
    """
    settle = timedelta(minutes=source.settings.settle_minutes)
    works: list[DayWork] = []
    refused: set[str] = set()
    for folder in folders:
        try:
            key = trail_key(folder.trail.path, local=source.is_local)
            path = day_state_path(dest, key, folder.day)
        except UnsafeKeyError as error:  # named once per trail folder; the others go on
            if folder.trail.path not in refused:
                refused.add(folder.trail.path)
                summary.problems.append(Problem(source.url(folder.trail.path), error.reason))
            continue
        state, version = load_day(dest, path)
        work = DayWork(folder, path, state, version, trail_key=key)
        work.marked_pending = state.pending or folder in marked_pending
        works.append(work)
        summary.days_listed += 1
        summary.days_complete += state.complete
        summary.days_pending += state.pending
        closed = day_closed(folder.day, now, settle)
        start_after = f"{folder.path}/{state.mark}" if state.mark and not closed else None
        for stored in source.list_after(folder.path, start_after):
            name = stored.path[len(folder.path) + 1 :]
            behind_mark = state.mark is not None and name <= state.mark
            if behind_mark and state.is_done(name):
                work.listed.append(Listed(name, True))
                continue  # What a listing from the mark would not have shown: not counted.
            summary.objects_seen += 1
            work.listed.append(Listed(name, settled(stored, name, now, settle)))
            if state.is_done(name):
                summary.objects_skipped["already_converted"] += 1
                continue
            if behind_mark and name not in state.failures:
                summary.objects_late += 1  # arrived after the listing had passed its name
            url = source.url(stored.path)
            try:
                parsed = parse_key(url)
            except UnrecognisedKeyError as error:
                summary.objects_skipped["unrecognised_key"] += 1
                summary.problems.append(Problem(url, error.reason))
                work.handled.add(name)
                continue
            if parsed.kind not in TABLE_OF_KIND:
                # Listed again next run (not done), until a converter for its kind exists.
                summary.objects_skipped[parsed.kind] += 1
                continue
            work.pending.append(PendingObject(stored, url, parsed))
    return works


def batches(
    pending: list[PendingObject], max_bytes: int, max_objects: int
) -> Iterator[list[PendingObject]]:
    """Consecutive groups of objects, bounded in bytes and count (memory stays flat)."""
    batch: list[PendingObject] = []
    size = 0
    for item in pending:
        if batch and (size + item.stored.size > max_bytes or len(batch) >= max_objects):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.stored.size
    if batch:
        yield batch


def convert_days(
    source: Storage,
    dest: Storage,
    works: list[DayWork],
    summary: RunSummary,
    *,
    settings: Settings,
    now: datetime,
    converter: BatchConverter = convert_batch,
    progress: Progress | None = None,
    run_batches: BatchRunner | None = None,
) -> None:
    """Convert the pending objects of ``works`` batch by batch, recording state after each.

    ``run_batches`` converts a stream of batches elsewhere (worker threads) and yields
    each batch with its outcome, in order; by default each goes through ``converter``.
    """
    settle = timedelta(minutes=settings.settle_minutes)
    owner: dict[str, tuple[DayWork, str]] = {}
    pending: list[PendingObject] = []
    for work in works:
        for item in work.pending:
            owner[item.url] = (work, item.stored.path[len(work.folder.path) + 1 :])
        pending += work.pending
    done = 0
    if progress:
        progress(done, len(pending))
    recorder = _Recorder(dest, now, settle, settings.max_read_attempts, summary)
    groups = batches(pending, settings.batch_bytes, settings.batch_objects)
    converted = (
        run_batches(groups)
        if run_batches
        else (
            (b, converter(source, dest, b, row_group_rows=settings.row_group_rows)) for b in groups
        )
    )
    touched: set[int] = set()
    for batch, outcome in converted:
        release_freed_memory()
        summary.add(outcome)
        finished = set(outcome.converted_urls)
        why = {p.key: p.reason for p in outcome.problems if p.record is None}
        in_batch: dict[int, DayWork] = {}
        for item in batch:
            work, name = owner[item.url]
            in_batch[id(work)] = work
            if item.url in finished:
                work.converted.add(name)
            else:  # Not read: counted against the object, retried by the next run.
                work.unread[name] = why.get(item.url, "could not read object")
        for work in in_batch.values():
            recorder.record(work)
            touched.add(id(work))
        done += len(batch)
        if progress:
            progress(done, len(pending))
    for work in works:  # Folders with nothing converted may still advance or close.
        if id(work) not in touched:
            recorder.record(work)


@dataclass
class _Recorder:
    """Advances folder states after batches; gives up on reads that failed too often."""

    dest: Storage
    now: datetime
    settle: timedelta
    max_read_attempts: int
    summary: RunSummary

    def record(self, work: DayWork) -> None:
        """Fold what this run did in ``work`` into its state and write it if it changed."""
        failures = {n: k for n, k in work.state.failures.items() if n not in work.converted}
        for name in work.unread:
            failures[name] = failures.get(name, 0) + 1
        given_up = {n for n in work.unread if failures[n] >= self.max_read_attempts}
        if given_up:
            # Named in the quarantine before the state passes them: redrive reads them again.
            self._quarantine_unreadable(work, given_up, failures)
            failures = {n: k for n, k in failures.items() if n not in given_up}
        done = work.state.done | work.converted | work.handled | given_up
        state = DayState(
            work.state.mark, done, work.state.complete, failures, work.state.every_name
        )
        work.converted, work.unread = set(), {}
        closed = day_closed(work.folder.day, self.now, self.settle)
        new = advance(state, work.listed, day_closed=closed)
        key = work.trail_key or trail_key(work.folder.trail.path)
        marker = pending_marker_path(self.dest, key, work.folder.day)
        if new.pending and not work.marked_pending:
            mark_pending(self.dest, marker, new.failures)
            work.marked_pending = True
        if new != work.state:  # Nothing new to remember: no PUT.
            work.state, work.version = save_day(self.dest, work.state_path, new, work.version)
        if work.marked_pending and not work.state.pending:
            clear_pending(self.dest, marker)
            work.marked_pending = False

    def _quarantine_unreadable(
        self, work: DayWork, names: set[str], failures: dict[str, int]
    ) -> None:
        by_name = {item.stored.path[len(work.folder.path) + 1 :]: item for item in work.pending}
        items = [by_name[name] for name in sorted(names)]
        batch = "u" + batch_id(
            f"{item.url}#{failures[name]}" for name, item in zip(sorted(names), items, strict=True)
        )
        when = now_utc()
        entries = []
        for name, item in zip(sorted(names), items, strict=True):
            reason = (
                f"could not read object in {failures[name]} attempts "
                f"(last: {work.unread[name]}); quarantined as unreadable"
            )
            entries.append(
                QuarantineEntry(
                    url=item.url,
                    size=item.stored.size,
                    sha256="",  # never read: redrive converts it whole
                    batch=batch,
                    quarantined=when,
                    reason=reason,
                    records_before_damage=0,
                )
            )
            self.summary.problems.append(Problem(item.url, reason))
        self.summary.objects_quarantined += write_quarantine(self.dest, batch, entries)


def new_summary(source: Storage, dest: Storage) -> RunSummary:
    """A run's summary, naming the source and both tables it writes."""
    return RunSummary(
        source=source.url(),
        events_table=dest.url(dest.path(EVENTS.name)),
        insights_table=dest.url(dest.path(INSIGHTS.name)),
    )


def log_plan(summary: RunSummary, pending: int, log_to: Callable[[str], Any] | None) -> None:
    message = (
        f"{summary.days_listed} day folders listed ({summary.days_complete} complete, "
        f"{summary.days_pending} pending); {summary.objects_seen} objects seen "
        f"({summary.objects_late} late), {pending} to convert, "
        f"skipped {dict(summary.objects_skipped)}"
    )
    (log_to or log.info)(message)
