"""What has been converted, recorded beside the table so any worker can resume.

Two records, both in the destination:

- ``_state/converted/YYYY/MM/DD/<batch>.json``: what one batch converted of the
  objects delivered that day (one record per delivery day it touched), written
  *after* its data (a run killed in between reconverts the batch and the table's
  de-duplication by eventID keeps each event once). Per object: its size, ETag,
  SHA-256 of its uncompressed content and record counts; per batch: the files it
  wrote with their rows and bytes. ``verify`` reads a day's records to account for
  every object without reading one (docs/adr/0014).
- ``_state/days/<source folder>/YYYY/MM/DD.json``: per delivery-day folder of a
  trail, the listing mark (where an open folder's next listing starts), every
  name done, the reads that failed, and whether the day is complete. Runs read
  it to convert only what is new; it is replaced only with conditional writes,
  merged on conflict, so racing runs never lose each other's progress.
- ``_state/pending/<source folder>/YYYY/MM/DD.json``: a folder with an object
  that could not be read yet. Every ingest lists these (one LIST) and lists their
  folders whatever its window, so a failed read is never forgotten (ADR 0013).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flows.storage import Storage, StoredObject
from transforms.errors import PipelineError
from transforms.reconcile import BatchCounts, ConvertedObject, TableFile

STATE_FOLDER = "_state/converted"
DAYS_FOLDER = "_state/days"
PENDING_FOLDER = "_state/pending"

_NAME_TIME = re.compile(r"_(\d{8}T\d{4})Z_")
"""CloudTrail names objects ``ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz``."""


def _json(value: object) -> bytes:
    """A state record as compact JSON: the C encoder (``indent`` takes the pure-Python one,
    0.15 s of a 300,000-event run, holding the GIL)."""
    return json.dumps(value, separators=(",", ":")).encode()


def record_converted(
    dest: Storage,
    batch: str,
    objects: Iterable[tuple[date, ConvertedObject]],
    counts: BatchCounts,
    events_written: int,
) -> None:
    """Record a batch's objects converted, one record per delivery day; call after its data."""
    by_day: dict[date, list[ConvertedObject]] = {}
    for day, entry in objects:
        by_day.setdefault(day, []).append(entry)
    totals = {
        "records": counts.records,
        "quarantined": counts.quarantined,
        "duplicates": counts.duplicates,
        "files": [{"path": f.path, "rows": f.rows, "bytes": f.size} for f in counts.files],
    }
    for day, entries in sorted(by_day.items()):
        record = {
            "batch": batch,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "day": day.isoformat(),
            "events_written": events_written,
            "objects": [_object_json(entry) for entry in entries],
            "batch_counts": totals,
        }
        dest.write_atomically(converted_record_path(dest, day, batch), _json(record))


def converted_record_path(dest: Storage, day: date, batch: str) -> str:
    return dest.path(converted_day_folder(day), f"{batch}.json")


def converted_day_folder(day: date) -> str:
    """Where the conversion records of a delivery day's objects are, below the table root."""
    return f"{STATE_FOLDER}/{day:%Y/%m/%d}"


def read_converted(data: bytes, where: str) -> tuple[list[ConvertedObject], BatchCounts]:
    """A conversion record's objects and its batch's counts."""
    found = json.loads(data)
    batch = str(found["batch"])
    objects = [
        ConvertedObject(
            url=o["url"],
            size=int(o["size"]),
            etag=o.get("etag"),
            sha256=o.get("sha256"),
            records=int(o.get("records", 0)),
            quarantined=int(o.get("quarantined", 0)),
            batch=batch,
            problem=o.get("problem"),
        )
        for o in found["objects"]
    ]
    totals = found.get("batch_counts", {})
    counts = BatchCounts(
        batch=batch,
        record=where,
        records=int(totals.get("records", 0)),
        quarantined=int(totals.get("quarantined", 0)),
        duplicates=int(totals.get("duplicates", 0)),
        files=tuple(
            TableFile(f["path"], int(f["rows"]), int(f["bytes"])) for f in totals.get("files", [])
        ),
    )
    return objects, counts


def _object_json(entry: ConvertedObject) -> dict[str, object]:
    found: dict[str, object] = {"url": entry.url, "size": entry.size}
    if entry.etag:
        found["etag"] = entry.etag
    if entry.sha256:
        found["sha256"] = entry.sha256
    found["records"] = entry.records
    found["quarantined"] = entry.quarantined
    if entry.problem:
        found["problem"] = entry.problem
    return found


@dataclass
class DayState:
    """Progress through one delivery-day folder (keys are object names within it)."""

    mark: str | None = None
    """Where an open folder's listing starts (``StartAfter``): every name up to it was done
    when the mark passed it. A closed folder is listed from its beginning (ADR 0013)."""
    done: set[str] = field(default_factory=set)
    """Every name converted (or handled) in the folder, below the mark too: a listing from
    the beginning tells a late arrival that sorts before the mark from an old object."""
    complete: bool = False
    """The day is over and everything listed in it is done. Saves re-reading, never listing."""
    failures: dict[str, int] = field(default_factory=dict)
    """Names whose read failed, with the attempts so far: the folder stays *pending* (listed
    whatever the window) until each is converted or quarantined as unreadable."""
    every_name: bool = True
    """``done`` holds every done name. False for a state written before ADR 0013, whose
    ``done`` held only the names above the mark: its mark still vouches for the names below."""

    def is_done(self, name: str) -> bool:
        vouched = not self.every_name and self.mark is not None and name <= self.mark
        return vouched or name in self.done

    @property
    def pending(self) -> bool:
        """Some object of the folder could not be read yet."""
        return bool(self.failures)

    def merged(self, other: DayState) -> DayState:
        """Progress of both: every done name of either, the later mark, the most attempts."""
        marks = [m for m in (self.mark, other.mark) if m is not None]
        done = self.done | other.done
        failures = {
            name: max(self.failures.get(name, 0), other.failures.get(name, 0))
            for name in self.failures.keys() | other.failures.keys()
            if name not in done
        }
        return DayState(
            max(marks) if marks else None,
            done,
            # Complete only if both saw it so: the other may have found a late arrival.
            self.complete and other.complete and not failures,
            failures,
            self.every_name and other.every_name,
        )

    def to_json(self) -> bytes:
        found: dict[str, object] = {
            "mark": self.mark,
            "done": sorted(self.done),
            "complete": self.complete,
            "every_name": self.every_name,
        }
        if self.failures:
            found["failures"] = dict(sorted(self.failures.items()))
        return _json(found)

    @classmethod
    def from_json(cls, data: bytes) -> DayState:
        found = json.loads(data)
        return cls(
            found.get("mark"),
            set(found.get("done", [])),
            bool(found.get("complete")),
            {str(k): int(v) for k, v in found.get("failures", {}).items()},
            bool(found.get("every_name", False)),
        )


@dataclass(frozen=True)
class Listed:
    """An object name seen in a day folder this run, and whether it is old enough to pass."""

    name: str
    settled: bool


def advance(state: DayState, listed: Sequence[Listed], *, day_closed: bool) -> DayState:
    """Move the mark over the longest run of done, settled names; say whether the day is complete.

    The mark never passes an object that is not done (a failed read is retried)
    nor a young one: CloudTrail may still upload an object whose name sorts before
    a young name, and a listing that starts after the mark would not see it until
    the folder closes and is listed from its beginning.
    """
    mark = state.mark
    for item in sorted(listed, key=lambda i: i.name):
        if mark is not None and item.name <= mark:
            continue
        # In a closed folder nothing new can sort between names any more: every done name
        # is settled (its listing starts from the beginning anyway).
        if not ((item.settled or day_closed) and state.is_done(item.name)):
            break
        mark = item.name
    complete = day_closed and not state.failures and all(state.is_done(i.name) for i in listed)
    return DayState(mark, set(state.done), complete, dict(state.failures), state.every_name)


def settled(obj: StoredObject, name: str, now: datetime, settle: timedelta) -> bool:
    """Is an object older than the settle margin (by its name's time, else its upload)?"""
    match = _NAME_TIME.search(name)
    if match:
        # YYYYMMDDTHHmm by hand: strptime cost 20 µs an object, before any batch could start.
        text = match[1]
        stamp = datetime(
            int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
            tzinfo=UTC,
        )  # fmt: skip
    elif obj.modified is not None:
        stamp = obj.modified
    else:
        return False
    return stamp <= now - settle


def day_closed(day: date, now: datetime, settle: timedelta) -> bool:
    """No object can land in a delivery folder any more: its day ended ``settle`` ago."""
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return now >= end + settle


def day_state_path(dest: Storage, trail_key: str, day: date) -> str:
    """Where the state of a trail folder's delivery day lives in the destination."""
    return dest.path(DAYS_FOLDER, trail_key, f"{day:%Y/%m/%d}.json")


def load_day(dest: Storage, path: str) -> tuple[DayState, str | None]:
    """A day's state and its version tag (None: no state yet)."""
    found = dest.read_versioned(path)
    if found is None:
        return DayState(), None
    return DayState.from_json(found[0]), found[1]


def save_day(
    dest: Storage, path: str, state: DayState, version: str | None, *, attempts: int = 20
) -> tuple[DayState, str]:
    """Write ``state`` over ``version``; on a conflict merge with what is there and retry.

    Returns what was written and its version. Merging is safe because state only
    grows: a mark says everything before it is done, whoever wrote it.
    """
    for _ in range(attempts):
        data = state.to_json()
        if version is None:
            written = dest.create_exclusive(path, data)
        else:
            written = dest.replace_if(path, data, version)
        if written is not None:
            return state, written
        theirs, version = load_day(dest, path)
        state = state.merged(theirs)
    raise RuntimeError(f"could not update {dest.url(path)} after {attempts} conflicting writes")


def pending_marker_path(dest: Storage, trail_key: str, day: date) -> str:
    """Where a pending folder is named, so ingest finds it whatever its window."""
    return dest.path(PENDING_FOLDER, trail_key, f"{day:%Y/%m/%d}.json")


def mark_pending(dest: Storage, path: str, names: Iterable[str]) -> None:
    """Name a folder pending (before its state records the failures: a kill between leaves
    a marker with nothing to do, never failures nobody looks for)."""
    dest.write_atomically(path, _json({"unread": sorted(names)}))


def clear_pending(dest: Storage, path: str) -> None:
    """The folder has nothing unread any more (call after its state says so)."""
    if dest.exists(path):
        dest.remove(path)


def pending_days(dest: Storage) -> list[tuple[str, date]]:
    """(trail key, day) of every pending folder: one LIST of the pending folder."""
    folder = dest.path(PENDING_FOLDER)
    if dest.is_local and not dest.exists(folder):
        return []
    found = []
    for stored in dest.list_files(folder):
        relative = stored.path[len(folder) + 1 :]
        trail, _, when = relative.rpartition("/")
        trail, _, month = trail.rpartition("/")
        trail, _, year = trail.rpartition("/")
        try:
            found.append((trail, date(int(year), int(month), int(when.removesuffix(".json")))))
        except ValueError:
            continue  # Not a marker this project writes.
    return found


class UnsafeKeyError(PipelineError):
    """A source key holds a ``.`` or ``..`` segment: as a path under the destination it
    would name another folder (even one outside the destination), so it is refused."""


def trail_key(path: str, *, local: bool = False) -> str:
    """A trail folder as a relative path under the state folder (bucket and key, no root).

    S3 keys are names, not paths: ``a/../AWSLogs`` is a folder of its own on S3, but a
    path through ``..`` under a local destination. Such a key is refused rather than
    normalised, so no state is written outside the destination, nor shared by two
    folders. A ``local`` folder's path is the file system's (``../logs`` as a user gave
    it; no listed name is ever ``..``): normalised.
    """
    segments = path.strip("/").split("/")
    if not local and any(segment in (".", "..") for segment in segments):
        raise UnsafeKeyError(
            "the source key has a '.' or '..' segment, which would place its state outside "
            "its own folder of the destination; not converted (rename the objects)",
            key=path,
        )
    return posixpath.normpath(path).lstrip("/")
