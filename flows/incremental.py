"""Convert what is new in some delivery-day folders: the engine under ingest and backfill.

For each day folder: read its state (one GET), skip it if complete, else list it
from its mark (``StartAfter``) and keep the objects not done yet. New objects
are converted in bounded batches across folders; after each batch's data is in,
the state of every folder it touched is advanced (conditional write). A run
killed anywhere redoes at most its unfinished batches, and the table's
eventID check keeps each event once (docs/adr/0004, 0010, 0011).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flows.batch import TABLE_OF_KIND, KnownEventIds, PendingObject, convert_batch
from flows.listing import DayFolder
from flows.memory import release_freed_memory
from flows.report import BatchOutcome, RunSummary
from flows.settings import Settings
from flows.state import (
    DayState,
    Listed,
    UnsafeKeyError,
    advance,
    day_closed,
    day_state_path,
    load_day,
    save_day,
    settled,
    trail_key,
)
from flows.storage import Storage
from schemas.cloudtrail import EVENTS
from schemas.insights import INSIGHTS
from transforms.errors import Problem, UnrecognisedKeyError
from transforms.keys import parse_key

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


def plan_days(
    source: Storage,
    dest: Storage,
    folders: list[DayFolder],
    summary: RunSummary,
    now: datetime,
) -> list[DayWork]:
    """Read each folder's state and list what is new in it; count everything seen."""
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
        work = DayWork(folder, path, state, version)
        works.append(work)
        if state.complete:
            summary.days_complete += 1
            continue
        summary.days_listed += 1
        start_after = f"{folder.path}/{state.mark}" if state.mark else None
        for stored in source.list_after(folder.path, start_after):
            summary.objects_seen += 1
            name = stored.path[len(folder.path) + 1 :]
            work.listed.append(Listed(name, settled(stored, name, now, settle)))
            if state.is_done(name):
                summary.objects_skipped["already_converted"] += 1
                continue
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

    ``run_batches`` converts a stream of batches elsewhere (worker processes) and yields
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
    touched: set[int] = set()
    groups = batches(pending, settings.batch_bytes, settings.batch_objects)
    converted = (
        run_batches(groups)
        if run_batches
        else (
            (b, converter(source, dest, b, row_group_rows=settings.row_group_rows)) for b in groups
        )
    )
    for batch, outcome in converted:
        release_freed_memory()
        summary.add(outcome)
        finished: dict[int, tuple[DayWork, set[str]]] = {}
        for url in outcome.converted_urls:
            work, name = owner[url]
            finished.setdefault(id(work), (work, set()))[1].add(name)
        for work, names in finished.values():
            _record(dest, work, names, now, settle)
            touched.add(id(work))
        done += len(batch)
        if progress:
            progress(done, len(pending))
    for work in works:  # Folders with nothing converted may still advance or close.
        if id(work) not in touched and not work.state.complete:
            _record(dest, work, set(), now, settle)


def _record(
    dest: Storage, work: DayWork, names: set[str], now: datetime, settle: timedelta
) -> None:
    """Advance a folder's state over what is done now and write it if it changed."""
    state = DayState(work.state.mark, work.state.done | names | work.handled, work.state.complete)
    new = advance(state, work.listed, day_closed=day_closed(work.folder.day, now, settle))
    if new == work.state:
        return  # Nothing new to remember: no PUT.
    work.state, work.version = save_day(dest, work.state_path, new, work.version)


def new_summary(source: Storage, dest: Storage) -> RunSummary:
    """A run's summary, naming the source and both tables it writes."""
    return RunSummary(
        source=source.url(),
        events_table=dest.url(dest.path(EVENTS.name)),
        insights_table=dest.url(dest.path(INSIGHTS.name)),
    )


def log_plan(summary: RunSummary, pending: int, log_to: Callable[[str], Any] | None) -> None:
    message = (
        f"{summary.days_listed} day folders listed ({summary.days_complete} complete, not "
        f"listed); {summary.objects_seen} objects seen, {pending} to convert, "
        f"skipped {dict(summary.objects_skipped)}"
    )
    (log_to or log.info)(message)
