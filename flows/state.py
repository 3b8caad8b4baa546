"""What has been converted, recorded beside the table so any worker can resume.

One small JSON file per converted batch, written *after* the batch's data: a run
killed in between reconverts the batch, and the table's de-duplication by
eventID keeps each event once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from flows.storage import Storage, StoredObject

STATE_FOLDER = "_state/converted"


def converted_objects(dest: Storage) -> set[tuple[str, int]]:
    """(object URL, size) of every object a finished batch converted."""
    folder = dest.path(STATE_FOLDER)
    if not dest.exists(folder):
        return set()
    done: set[tuple[str, int]] = set()
    for manifest in dest.list_files(folder):
        if not manifest.path.endswith(".json"):
            continue
        for entry in json.loads(dest.read(manifest.path))["objects"]:
            done.add((entry["url"], int(entry["size"])))
    return done


def record_converted(
    dest: Storage, batch: str, objects: Iterable[tuple[str, StoredObject]], events_written: int
) -> None:
    """Mark a batch's objects converted (``(url, object)`` pairs); call after its data is in."""
    manifest = {
        "batch": batch,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "events_written": events_written,
        "objects": [{"url": url, "size": obj.size} for url, obj in objects],
    }
    dest.write_atomically(
        dest.path(STATE_FOLDER, f"{batch}.json"), json.dumps(manifest, indent=0).encode()
    )
