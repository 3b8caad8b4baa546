"""The quarantine beside the table: what a batch could not convert, kept to be re-driven.

``DEST/_quarantine/<batch>.jsonl`` holds one entry per log object of that batch
with a problem (see ``transforms.quarantine``). A batch writes its file after its
data and before its state record, so a batch marked converted always has its
failures on record; ``ctparquet redrive DEST`` works through the files.

Objects that could not be *read* (storage errors after retries) are not
quarantined: they are not marked converted, so the next ingest tries them again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from flows.storage import Storage
from transforms.convert import ConvertedBatch, LogBytes
from transforms.quarantine import (
    QuarantineEntry,
    decode_entries,
    encode_entries,
    quarantine_entries,
)

log = logging.getLogger(__name__)

QUARANTINE_FOLDER = "_quarantine"
_SUFFIX = ".jsonl"


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def quarantine_file(dest: Storage, batch: str) -> str:
    return dest.path(QUARANTINE_FOLDER, f"{batch}{_SUFFIX}")


def quarantine_batch(
    dest: Storage, batch: str, inputs: Sequence[LogBytes], converted: ConvertedBatch
) -> int:
    """Write the batch's quarantine file (or clear a stale one); the number of objects in it."""
    return write_quarantine(dest, batch, quarantine_entries(converted, inputs, batch, now_utc()))


def write_quarantine(dest: Storage, batch: str, entries: Sequence[QuarantineEntry]) -> int:
    """Write a batch's quarantine entries (built where it was converted); call before its state."""
    path = quarantine_file(dest, batch)
    if entries:
        dest.write_atomically(path, encode_entries(entries))
        log.info("batch %s: %d objects quarantined", batch, len(entries))
    elif dest.exists(path):  # A rerun of the batch converted what an earlier run could not.
        dest.remove(path)
    return len(entries)


def quarantine_files(dest: Storage) -> Iterator[str]:
    """Paths of the quarantine files under ``dest``, in name order."""
    folder = dest.path(QUARANTINE_FOLDER)
    if not dest.exists(folder):
        return
    for stored in dest.list_files(folder):
        if stored.path.endswith(_SUFFIX):
            yield stored.path


def read_quarantine_file(dest: Storage, path: str) -> list[QuarantineEntry]:
    return decode_entries(dest.read(path), dest.url(path))


def rewrite_quarantine_file(dest: Storage, path: str, entries: Sequence[QuarantineEntry]) -> None:
    """Replace a quarantine file with what is still quarantined; remove it when nothing is."""
    if entries:
        dest.write_atomically(path, encode_entries(entries))
    else:
        dest.remove(path)
