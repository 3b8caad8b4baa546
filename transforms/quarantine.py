"""What a conversion could not convert, as quarantine entries: enough to find it and re-drive it.

One entry per log object with a problem: its URL, size and SHA-256 (so a re-drive
knows whether it changed), the object-level problem with how many records came
before the damage, and each record that was not converted (position, eventID,
reason). Entries are JSON lines; this module only builds and reads them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from transforms.convert import ConvertedBatch, LogBytes, RecordSelection
from transforms.errors import PipelineError, Problem


class QuarantinedRecord(msgspec.Struct, omit_defaults=True):
    """A record of a quarantined object that was not converted."""

    record: int
    """Its position in the object's ``Records`` array (0-based)."""
    reason: str
    event_id: str | None = None


class QuarantineEntry(msgspec.Struct, omit_defaults=True):
    """A log object some of which (or all of which) is not in the table, and why."""

    url: str
    size: int
    sha256: str
    """Of the object's bytes as they were read: a re-drive notices a replaced object."""
    batch: str
    """The conversion batch that quarantined it (also the name of its quarantine file)."""
    quarantined: str
    """When it was first quarantined (ISO 8601, UTC)."""
    reason: str | None = None
    """Why the object could not be read whole; None when only some records failed."""
    records_before_damage: int | None = None
    """With ``reason``: records read before the damage; none from this position on were."""
    records: list[QuarantinedRecord] = msgspec.field(default_factory=list)
    redrives: int = 0
    last_redrive: str | None = None


class QuarantineFileError(PipelineError):
    """A quarantine file that is not the JSON lines this project writes."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quarantine_entries(
    converted: ConvertedBatch, inputs: Sequence[LogBytes], batch: str, now: str
) -> list[QuarantineEntry]:
    """An entry for each input object that has a problem, in input order."""
    by_key = _problems_by_key(converted.problems)
    entries = []
    for log in inputs:
        problems = by_key.get(log.key)
        if problems:
            entries.append(
                _entry(
                    log.key,
                    log.data,
                    problems,
                    converted.records_before_damage.get(log.key),
                    batch=batch,
                    quarantined=now,
                )
            )
    return entries


def selection_of(entry: QuarantineEntry) -> RecordSelection:
    """The records a re-drive converts: those that failed, and all after the damage."""
    return RecordSelection(
        frozenset(r.record for r in entry.records),
        rest_from=(entry.records_before_damage or 0) if entry.reason is not None else None,
    )


def after_redrive(
    entry: QuarantineEntry, converted: ConvertedBatch, data: bytes, now: str
) -> QuarantineEntry | None:
    """What is still quarantined of ``entry`` after a re-drive of it; None if nothing."""
    problems = _problems_by_key(converted.problems).get(entry.url)
    if not problems:
        return None
    updated = _entry(
        entry.url,
        data,
        problems,
        converted.records_before_damage.get(entry.url),
        batch=entry.batch,
        quarantined=entry.quarantined,
    )
    updated.redrives = entry.redrives + 1
    updated.last_redrive = now
    return updated


def problems_of(entry: QuarantineEntry) -> list[Problem]:
    """The entry as the problems a run summary lists."""
    found = [] if entry.reason is None else [Problem(entry.url, entry.reason)]
    found += [Problem(entry.url, r.reason, r.record, r.event_id) for r in entry.records]
    return found


def encode_entries(entries: Iterable[QuarantineEntry]) -> bytes:
    """JSON lines, one entry a line."""
    return b"".join(msgspec.json.encode(entry) + b"\n" for entry in entries)


_decode_entry = msgspec.json.Decoder(QuarantineEntry).decode


def decode_entries(data: bytes, name: str) -> list[QuarantineEntry]:
    """The entries of a quarantine file; ``QuarantineFileError`` names a line that is not one."""
    entries = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(_decode_entry(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            reason = f"line {number} is not a quarantine entry ({error})"
            raise QuarantineFileError(reason, key=name) from None
    return entries


def _problems_by_key(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    by_key: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        by_key[problem.key].append(problem)
    return by_key


def _entry(
    url: str,
    data: bytes,
    problems: list[Problem],
    before_damage: int | None,
    *,
    batch: str,
    quarantined: str,
) -> QuarantineEntry:
    object_reasons = [p.reason for p in problems if p.record is None]
    records = sorted(
        (
            QuarantinedRecord(p.record, p.reason, p.event_id)
            for p in problems
            if p.record is not None
        ),
        key=lambda r: r.record,
    )
    return QuarantineEntry(
        url=url,
        size=len(data),
        sha256=digest(data),
        batch=batch,
        quarantined=quarantined,
        reason="; ".join(object_reasons) if object_reasons else None,
        records_before_damage=before_damage if object_reasons else None,
        records=records,
    )
