"""Replacing a partition's files so no row is seen twice or lost, even by a killed run.

New files are written outside the table, under
``_state/compaction/unfinished/<table>/<partition>/<attempt>/``, where no reader
looks. Once every new file is complete, an intent record beside them names the
new files and the old ones they replace. Then comes the swap: each new file is
published into the partition (a server-side copy on S3, a rename locally), and
the old files are deleted in one request. A reader that lists the partition
during the swap can see a row twice. That window is the one plain Parquet cannot
close; ADR 5 gives its width.

A failure before any old file is deleted undoes the attempt. Published files go
first, then the intent, then the staged files. A failure while deleting old files
cannot be undone (their rows now live only in the new set), so the intent stays;
so it does if the lease was lost while publishing (another writer may rely on the
published files by then).
A killed run undoes nothing. The next compaction of the partition finds its
leftovers and holds the partition's lease while it deals with them. Staged files
with no intent are half-written, and are removed. With an intent, the new set is
complete, and the swap is finished (rolled forward). The order of the removals
keeps this true at every point a run can die.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from flows.lock import Lease, LeaseLostError
from flows.storage import Storage, StoredObject

log = logging.getLogger(__name__)

UNFINISHED_FOLDER = "_state/compaction/unfinished"
INTENT_NAME = "intent.json"

Phase = Literal["writing", "publishing", "deleting", "done"]


@dataclass
class Swap:
    """One attempt at replacing ``old`` (files of one partition) with new files."""

    dest: Storage
    staging: str
    """This attempt's folder of staged files and intent."""
    old: list[StoredObject]
    new: list[tuple[str, str]] = field(default_factory=list)
    """(staged, final) path of each new file, in order."""
    phase: Phase = "writing"
    published: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """How long the swap took: first file published to last old file deleted."""

    @classmethod
    def begin(cls, dest: Storage, table: str, partition: str, old: list[StoredObject]) -> Swap:
        staging = dest.path(UNFINISHED_FOLDER, table, partition, uuid.uuid4().hex[:16])
        return cls(dest, staging, old)

    def stage(self, final: str) -> str:
        """Where to write the new file that will become ``final``."""
        staged = posixpath.join(self.staging, posixpath.basename(final))
        self.new.append((staged, final))
        return staged

    def commit(self, lease: Lease) -> None:
        """Every new file is staged and complete: record the intent, then swap."""
        self.dest.write_atomically(
            posixpath.join(self.staging, INTENT_NAME), _intent(self.dest, self.new, self.old)
        )
        lease.renew()  # a full lease for the swap, so no renewal widens its window
        self.phase = "publishing"
        started = time.perf_counter()
        for staged, final in self.new:
            lease.keep()
            self.dest.publish(staged, final)
            self.published.append(final)
        lease.keep()
        self.phase = "deleting"
        finals = {final for _, final in self.new}
        self.dest.remove_many([o.path for o in self.old if o.path not in finals])
        self.seconds = time.perf_counter() - started
        self.phase = "done"
        _remove_attempt(self.dest, self.staging, [staged for staged, _ in self.new])

    def abandon(self, error: BaseException) -> bool:
        """After a failure: remove what this attempt wrote, if that can still be right;
        False if the swap is left for the next run to finish."""
        if self.phase == "deleting" or (
            # Without the lease another writer may already rely on the published files
            # (an ingest drops events it finds there): only the next holder may decide.
            self.phase == "publishing" and isinstance(error, LeaseLostError)
        ):
            log.warning("swap in %s stopped; the next compaction finishes it", self.staging)
            return False
        try:
            self.dest.remove_many(self.published)
            _remove_attempt(self.dest, self.staging, [staged for staged, _ in self.new])
        except OSError as undo_error:  # what is left, the next run finds (module's story)
            log.warning("could not undo %s: %s", self.staging, undo_error)
        return True


@dataclass(frozen=True)
class Unfinished:
    """Leftovers of an attempt no run is finishing (found under the partition's lease)."""

    table: str
    partition: str
    staging: str


def find_unfinished(dest: Storage) -> list[Unfinished]:
    """Every attempt folder under the unfinished area (one LIST while there are none)."""
    root = dest.path(UNFINISHED_FOLDER)
    found: dict[str, Unfinished] = {}
    for stored in dest.list_after(root):
        staging = posixpath.dirname(stored.path)
        parts = posixpath.relpath(staging, root).split("/")
        if len(parts) == 6 and staging not in found:  # table, 4 partition keys, attempt
            found[staging] = Unfinished(parts[0], "/".join(parts[1:5]), staging)
    return list(found.values())


def finish_unfinished(dest: Storage, unfinished: Unfinished, lease: Lease) -> str:
    """Finish a killed attempt's swap, or remove its half-written files; which it was."""
    present = [s.path for s in dest.list_after(unfinished.staging)]  # as it is, under the lease
    intent_path = posixpath.join(unfinished.staging, INTENT_NAME)
    if intent_path not in present:
        _remove_attempt(dest, unfinished.staging, present)
        return "removed"
    intent = json.loads(dest.read(intent_path))
    new = [(dest.path(n["staged"]), dest.path(n["final"])) for n in intent["new"]]
    for staged, final in new:
        if not dest.exists(final):
            lease.keep()
            dest.publish(staged, final)
    folder = posixpath.dirname(new[0][1]) if new else None
    sizes = {s.path: s.size for s in dest.list_dir(folder).files} if folder else {}
    finals = {final for _, final in new}
    # An old file rewritten since (same name, other size) is left: the next compaction
    # of the partition reads it with the rest and drops what repeats.
    doomed = [
        dest.path(o["path"])
        for o in intent["old"]
        if sizes.get(dest.path(o["path"])) == o["size"] and dest.path(o["path"]) not in finals
    ]
    lease.keep()
    dest.remove_many(doomed)
    _remove_attempt(dest, unfinished.staging, present)
    return "rolled_forward"


def _remove_attempt(dest: Storage, staging: str, staged: list[str]) -> None:
    """The intent first, then the staged files: staged files alone mean 'undo'."""
    intent = posixpath.join(staging, INTENT_NAME)
    dest.remove(intent)
    dest.remove_many([path for path in staged if path != intent])


def _intent(dest: Storage, new: list[tuple[str, str]], old: list[StoredObject]) -> bytes:
    def relative(path: str) -> str:
        return posixpath.relpath(path, dest.root)

    return json.dumps(
        {
            "new": [{"staged": relative(s), "final": relative(f)} for s, f in new],
            "old": [{"path": relative(o.path), "size": o.size} for o in old],
        },
        indent=1,
    ).encode()
