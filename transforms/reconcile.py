"""Reconcile a trail with its table, the pure part: what the source holds, what the digests
name, what the conversion records say and what the table's listing shows -> problems.

Every log object delivered must be converted, or named here with the reason. Three
checks, each from facts the I/O side gathered with listings and small reads only (no
log object is read):

- **objects**: every log object listed in a delivery-day folder has a conversion
  record of the same version (size, and ETag when both sides know it); every object
  a record names for those days is still in the source;
- **digests**: every log file a CloudTrail digest names is in the source, converted,
  and the SHA-256 recorded when it was converted equals the digest's ``hashValue``;
  every digest's previous digest exists and hashes to what the next one says;
- **counts**: a batch's records, less those quarantined and the duplicates dropped,
  are the rows its files hold, and each file is in the table at the size written.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from transforms.digest import Digest, awslogs_key
from transforms.errors import Problem


@dataclass(frozen=True)
class SourceObject:
    """A log object as the source lists it now."""

    url: str
    size: int
    etag: str | None = None


@dataclass(frozen=True)
class ConvertedObject:
    """A log object as its conversion record names it."""

    url: str
    size: int
    etag: str | None
    sha256: str | None
    """Hex SHA-256 of its uncompressed content, as the digests name it (None: not recorded)."""
    records: int
    quarantined: int
    batch: str
    problem: str | None = None
    """Why the object could not be read whole (its remains are quarantined)."""


@dataclass(frozen=True)
class TableFile:
    """A file a batch wrote: its path below the table root, rows and bytes."""

    path: str
    rows: int
    size: int


@dataclass(frozen=True)
class BatchCounts:
    """What one batch read and wrote, from its conversion record at ``record``."""

    batch: str
    record: str
    records: int
    quarantined: int
    duplicates: int
    files: tuple[TableFile, ...]


@dataclass
class Findings:
    """Problems found, counts of what was checked, and the objects no record names."""

    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    not_converted: list[str] = field(default_factory=list)
    """``AWSLogs/…`` keys of log objects in the source that no conversion record names."""

    def add(self, other: Findings) -> None:
        self.problems += other.problems
        self.counts.update(other.counts)
        self.not_converted += other.not_converted


def same_version(listed: SourceObject, converted: ConvertedObject) -> bool:
    """Is the object listed now the one converted? ETags when both are known, else sizes."""
    if listed.etag and converted.etag:
        return listed.etag == converted.etag
    return listed.size == converted.size


def reconcile_objects(
    listed: Mapping[str, SourceObject], converted: Mapping[str, ConvertedObject]
) -> Findings:
    """Objects listed (by ``AWSLogs/…`` key) against the conversion records of the same days."""
    found = Findings()
    for key, now in sorted(listed.items()):
        entry = converted.get(key)
        found.counts["objects_seen"] += 1
        if entry is None:
            found.counts["objects_not_converted"] += 1
            found.not_converted.append(key)
            found.problems.append(Problem(now.url, "not converted: no conversion record names it"))
        elif not same_version(now, entry):
            found.counts["objects_changed"] += 1
            found.problems.append(
                Problem(
                    now.url,
                    f"changed after conversion: it is {now.size:,} bytes"
                    f"{_etag(now.etag)} now, {entry.size:,} bytes{_etag(entry.etag)} "
                    f"when batch {entry.batch} converted it",
                )
            )
        else:
            found.counts["objects_converted"] += 1
            if entry.problem or entry.quarantined:
                found.counts["objects_quarantined"] += 1
    for key, entry in sorted(converted.items()):
        if key not in listed:
            found.counts["objects_deleted"] += 1
            found.problems.append(
                Problem(
                    entry.url,
                    f"missing from the source: batch {entry.batch} converted it, it is gone now",
                )
            )
    return found


def account_for_quarantine(
    found: Findings, listed: Mapping[str, SourceObject], quarantined: Mapping[str, int]
) -> Findings:
    """Objects the quarantine holds, at the version listed now, are accounted for.

    ``quarantined`` maps an object's URL to the size it was quarantined at: an object that
    could never be read (no conversion record names it) or a new version a re-drive has yet
    to convert is named there, with its reason, so it is neither "not converted" nor
    "changed": the quarantine is where it is reported, and ``redrive`` where it is handled.
    """
    held = {now.url: key for key, now in listed.items() if quarantined.get(now.url) == now.size}
    kept = Findings(counts=found.counts.copy())
    for problem in found.problems:
        reason = problem.reason
        if problem.key in held and reason.startswith(("not converted", "changed after conversion")):
            bucket = "objects_not_converted" if reason.startswith("not") else "objects_changed"
            kept.counts[bucket] -= 1
            kept.counts["objects_quarantined"] += 1
            kept.counts["objects_held_in_quarantine"] += 1
        else:
            kept.problems.append(problem)
    held_keys = set(held.values())
    kept.not_converted = [key for key in found.not_converted if key not in held_keys]
    return kept


def reconcile_digests(
    digests: Iterable[Digest],
    present: Mapping[str, SourceObject],
    converted: Mapping[str, ConvertedObject],
    *,
    digests_present: Collection[str],
    checked: Collection[str] = (),
) -> Findings:
    """Every log file each digest names is present, converted and of the hash it names.

    ``present`` and ``converted`` are by ``AWSLogs/…`` key, and cover the days of the
    log files named. ``digests_present``: ``AWSLogs/…`` keys of digests known to exist
    (those listed, and previous digests looked up). ``checked``: keys the objects check
    already reported on (a missing conversion is reported once).
    """
    found = Findings()
    digests = list(digests)
    by_key = {awslogs_key(d.s3_object): d for d in digests}
    for digest in digests:
        found.counts["backfill_digests_read" if digest.backfill else "digests_read"] += 1
        named = f"{'backfill ' if digest.backfill else ''}digest {_name(digest.key)}"
        for log_file in digest.log_files:
            found.counts["digest_log_files"] += 1
            key = awslogs_key(log_file.key)
            url = f"s3://{log_file.bucket}/{log_file.key}"
            entry = converted.get(key)
            if key not in present:
                found.counts["digest_log_files_missing"] += 1
                reason = "missing from the source: "
                reason += f"{named} names it" + ("" if entry is None else ", and it was converted")
                found.problems.append(Problem(url, reason))
            elif entry is None:
                if key not in checked:
                    found.not_converted.append(key)
                    found.problems.append(Problem(url, f"not converted: {named} names it"))
            elif entry.sha256 is None:
                found.counts["digest_log_files_hash_unrecorded"] += 1
            elif entry.sha256 != log_file.hash_value:
                found.counts["digest_log_files_changed"] += 1
                found.problems.append(
                    Problem(
                        url,
                        "changed after delivery: the content converted has SHA-256 "
                        f"{entry.sha256[:16]}…, {named} names {log_file.hash_value[:16]}…",
                    )
                )
            else:
                found.counts["digest_log_files_verified"] += 1
        found.add(_chain(digest, by_key, digests_present, named))
    return found


def _chain(
    digest: Digest, by_key: Mapping[str, Digest], digests_present: Collection[str], named: str
) -> Findings:
    """The link from ``digest`` to its previous one: present, and of the hash it names."""
    found = Findings()
    if digest.previous_object is None:
        found.counts["digest_chain_starts"] += 1
        return found
    previous = awslogs_key(digest.previous_object)
    url = f"s3://{digest.previous_bucket or digest.s3_bucket}/{digest.previous_object}"
    if previous not in digests_present:
        found.counts["digest_chain_gaps"] += 1
        found.problems.append(
            Problem(url, f"missing from the source: a gap in the digest chain ({named} follows it)")
        )
        return found
    before = by_key.get(previous)
    if before is not None and digest.previous_hash and before.sha256 != digest.previous_hash:
        found.problems.append(
            Problem(
                url,
                "changed after delivery: this digest's SHA-256 is not the "
                f"previousDigestHashValue that {named} names",
            )
        )
    return found


def reconcile_counts(
    batches: Iterable[BatchCounts],
    table_files: Mapping[str, int],
    *,
    compacted: Collection[str],
    table_url: str,
) -> Findings:
    """Each batch's row arithmetic, and each of its files in the table at the size written.

    ``table_files``: size of every file now in the partitions the batches wrote, by path
    below the table root; ``compacted``: those partitions that compaction rewrote (their
    rows now sit in compacted files, which are checked by compaction itself).
    """
    found = Findings()
    for counts in {b.batch: b for b in batches}.values():
        found.counts["batches_checked"] += 1
        rows = sum(f.rows for f in counts.files)
        expected = counts.records - counts.quarantined - counts.duplicates
        if rows != expected:
            found.problems.append(
                Problem(
                    counts.record,
                    f"count differs: batch {counts.batch} read {counts.records:,} records, "
                    f"quarantined {counts.quarantined:,} and dropped {counts.duplicates:,} "
                    f"duplicates, so {expected:,} rows, but its files hold {rows:,}",
                )
            )
        for written in counts.files:
            if posixpath.dirname(written.path) in compacted:
                found.counts["files_compacted"] += 1
                continue
            size = table_files.get(written.path)
            if size == written.size:
                found.counts["files_verified"] += 1
                continue
            now = "is gone" if size is None else f"is {size:,} bytes, not {written.size:,}"
            found.problems.append(
                Problem(
                    f"{table_url.rstrip('/')}/{written.path}",
                    f"count differs: batch {counts.batch} wrote {written.rows:,} rows here, "
                    f"the file {now}",
                )
            )
    return found


def _etag(etag: str | None) -> str:
    return f" (ETag {etag})" if etag else ""


def _name(key: str) -> str:
    return posixpath.basename(key)
