"""The verify job as plain Python: account for every log object of some delivery days.

For each delivery day asked it lists the trail's day folders (whole: not from a
mark), reads the day's conversion records (``_state/converted/YYYY/MM/DD/``), the
day's CloudTrail digests, and lists the table partitions the records name. From
those alone (no log object is read) ``transforms.reconcile`` finds what is missing,
changed, not converted or miscounted. ``repair`` converts what is not converted
through the same batches as ingest (data, then records, then day state), so the
table's eventID check keeps each event once.

No Prefect here: ``ctparquet verify --no-prefect`` runs it as it is; the flow in
``flows.verify`` runs this same function.
"""

from __future__ import annotations

import base64
import posixpath
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flows.aws import boto3_client, summarise_requests
from flows.batch import TABLE_OF_KIND, KnownEventIds, PendingObject, convert_batch
from flows.incremental import DayWork, convert_days, new_summary
from flows.listing import KIND_FOLDERS, DayFolder, TrailFolder, days_between, discover
from flows.quarantine import quarantine_files, read_quarantine_file
from flows.report import MAX_LISTED_PROBLEMS, BatchOutcome, RunSummary
from flows.run import open_storages
from flows.settings import Settings
from flows.state import (
    Listed,
    converted_day_folder,
    day_state_path,
    load_day,
    read_converted,
    settled,
    trail_key,
)
from flows.storage import Storage, StoredObject
from schemas.cloudtrail import EVENTS
from transforms.digest import (
    Digest,
    DigestFormatError,
    awslogs_key,
    parse_digest,
    signature_valid,
)
from transforms.errors import PipelineError, Problem, UnrecognisedKeyError
from transforms.keys import LogObject, parse_key
from transforms.parquet import COMPACTED_PREFIX
from transforms.reconcile import (
    BatchCounts,
    ConvertedObject,
    Findings,
    SourceObject,
    account_for_quarantine,
    reconcile_counts,
    reconcile_digests,
    reconcile_objects,
    same_version,
)

DIGEST_FOLDER = "CloudTrail-Digest"
DEFAULT_DAYS = 7


COUNTS = (
    "day_folders_listed",
    "objects_seen",
    "objects_converted",
    "objects_quarantined",
    "objects_held_in_quarantine",
    "objects_not_converted",
    "objects_changed",
    "objects_deleted",
    "objects_unrecognised",
    "digest_folders_listed",
    "digests_read",
    "backfill_digests_read",
    "digests_looked_up",
    "digest_chain_starts",
    "digest_chain_gaps",
    "digest_log_files",
    "digest_log_files_verified",
    "digest_log_files_missing",
    "digest_log_files_changed",
    "digest_log_files_hash_unrecorded",
    "digest_signatures_verified",
    "records_read",
    "batches_checked",
    "files_verified",
    "files_compacted",
)
"""The summary's counts, always present (0 when nothing of the kind was seen)."""


class VerifyRangeError(PipelineError):
    """The delivery days asked for are not a range (start after end)."""


class SignaturesNeedS3Error(PipelineError):
    """Digest signatures are S3 object metadata: a local copy of a trail has none."""


PublicKeys = Callable[[str, datetime, datetime], dict[str, bytes]]
"""(region, start, end) -> CloudTrail's public keys valid then, DER, by fingerprint."""


@dataclass
class VerifySummary:
    """What a verify run checked and found: the CLI's summary, the flow's report."""

    source: str
    events_table: str
    start: date
    end: date
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    repair: dict[str, Any] | None = None
    """What ``--repair`` converted (None: not asked)."""
    source_requests: Counter[str] = field(default_factory=Counter)
    table_requests: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "events_table": self.events_table,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            **{
                name: self.counts[name]
                for name in (*COUNTS, *sorted(set(self.counts) - set(COUNTS)))
            },
            "repair": self.repair,
            "problems_count": len(self.problems),
            "problems": [p.as_dict() for p in self.problems[:MAX_LISTED_PROBLEMS]],
            "requests": {
                "source": summarise_requests(self.source_requests),
                "table": summarise_requests(self.table_requests),
            },
            "seconds": round(self.seconds, 3),
        }

    def to_markdown(self) -> str:
        rows = [("Source", f"`{self.source}`"), ("Table", f"`{self.events_table}`")]
        rows.append(("Delivery days", f"{self.start} .. {self.end}"))
        rows += [(name.replace("_", " "), f"{self.counts[name]:,}") for name in COUNTS]
        rows.append(("Problems", f"{len(self.problems):,}"))
        lines = ["# CloudTrail verify", "", "| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        if self.problems:
            lines += ["", "## Problems (first 20)", "", "| object | reason |", "|---|---|"]
            lines += [
                f"| `{p.key}` | {p.reason.replace('|', chr(92) + '|')} |"
                for p in self.problems[:20]
            ]
        return "\n".join(lines) + "\n"


@dataclass
class _Folder:
    """A delivery-day folder of log objects as listed now."""

    folder: DayFolder
    stored: dict[str, StoredObject]
    """By ``AWSLogs/…`` key."""
    parsed: dict[str, LogObject]


@dataclass
class _Evidence:
    """Everything gathered from the source and the table; reconciled without more I/O."""

    folders: dict[str, _Folder] = field(default_factory=dict)
    """Log folders listed, by their ``AWSLogs/…`` path."""
    in_range: dict[str, SourceObject] = field(default_factory=dict)
    present: dict[str, SourceObject] = field(default_factory=dict)
    """Every log object listed, also in folders outside the range (named by a digest)."""
    converted: dict[str, ConvertedObject] = field(default_factory=dict)
    converted_in_range: dict[str, ConvertedObject] = field(default_factory=dict)
    batches: list[BatchCounts] = field(default_factory=list)
    range_days: set[date] = field(default_factory=set)
    record_days: set[date] = field(default_factory=set)
    digests: list[Digest] = field(default_factory=list)
    digests_present: set[str] = field(default_factory=set)
    signatures: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """With --signatures: each digest's ``x-amz-meta-signature`` and region, by URL."""
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def default_days(today: date, days: int = DEFAULT_DAYS) -> tuple[date, date]:
    """The last ``days`` delivery days, today included."""
    return today - timedelta(days=days - 1), today


def run_verify(
    source_url: str,
    dest_url: str,
    *,
    start: date | None = None,
    end: date | None = None,
    repair: bool = False,
    signatures: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
    public_keys: PublicKeys | None = None,
    log: Callable[[str], Any] | None = None,
) -> VerifySummary:
    """Reconcile the delivery days ``start``..``end`` (default: the last 7) of the trail under
    ``source_url`` with the table under ``dest_url``; with ``repair``, convert what is not.

    The summary's ``problems`` name every object missing, changed, not converted or
    miscounted; none means every log object of those days is accounted for.
    ``signatures``: also verify each digest's RSA signature against CloudTrail's public
    keys (``public_keys``, default ``cloudtrail:ListPublicKeys`` in the digest's region).
    """
    settings = settings or Settings()
    now = now or datetime.now(UTC)
    first, last = default_days(now.date())
    start, end = start or first, end or last
    if start > end:
        raise VerifyRangeError(f"--start {start} is after --end {end}")
    started = time.perf_counter()
    source, dest = open_storages(source_url, dest_url, settings)
    if signatures and not source.is_s3:
        raise SignaturesNeedS3Error(
            "--signatures needs the trail's S3 bucket: signatures are object metadata",
            key=source.url(),
        )
    summary = VerifySummary(source.url(), dest.url(dest.path(EVENTS.name)), start, end)
    evidence = gather(source, dest, start, end, now, signatures=signatures)
    if signatures:
        check_signatures(evidence, public_keys or cloudtrail_public_keys(settings))
    found = reconcile(evidence, dest)
    if repair and found.not_converted:
        summary.repair = repair_objects(
            source, dest, evidence, found.not_converted, settings=settings, now=now
        )
        (log or _quiet)(f"repair converted {summary.repair['objects_converted']} objects")
        _reload_records(dest, evidence)
        found = reconcile(evidence, dest)
        summary.problems += [Problem(**p) for p in summary.repair.pop("problems")]
    elif repair:
        summary.repair = {"objects_converted": 0, "events_written": 0}
    summary.counts.update(evidence.counts)
    summary.counts.update(found.counts)
    summary.problems[:0] = evidence.problems + found.problems
    summary.source_requests.update(source.requests())
    summary.table_requests.update(dest.requests())
    summary.seconds = time.perf_counter() - started
    return summary


def gather(
    source: Storage, dest: Storage, start: date, end: date, now: datetime, *, signatures: bool
) -> _Evidence:
    """List the range's folders and digests, read its records: the facts to reconcile."""
    evidence = _Evidence()
    found = discover(source, kinds=(*KIND_FOLDERS, DIGEST_FOLDER))
    days = [d for d in days_between(start, end) if found.admits(d)]
    trails = [t for t in found.trails if t.kind != DIGEST_FOLDER]
    for trail in trails:
        for day in days:
            listed = _list_folder(source, DayFolder(trail, day), evidence)
            for key, stored in listed.stored.items():
                evidence.in_range[key] = SourceObject(
                    source.url(stored.path), stored.size, stored.etag
                )
    evidence.range_days = set(days)
    _load_records(dest, evidence, days)
    # A digest names log files delivered in its hour: those of the range's last hour are in
    # the next day's digests.
    digest_days = days + ([end + timedelta(days=1)] if end < now.date() else [])
    for trail in (t for t in found.trails if t.kind == DIGEST_FOLDER):
        for day in digest_days:
            _read_digests(source, DayFolder(trail, day), evidence, signatures=signatures)
    _gather_named_elsewhere(source, dest, evidence, trails)
    return evidence


def reconcile(evidence: _Evidence, dest: Storage) -> Findings:
    """The three checks over what was gathered, plus one LIST per partition the records name."""
    # Records of folders the source does not lead to (another account, another trail
    # converted into the same table) are not this source's to account for.
    in_scope = {
        key: entry
        for key, entry in evidence.converted_in_range.items()
        if posixpath.dirname(key) in evidence.folders
    }
    found = account_for_quarantine(
        reconcile_objects(evidence.in_range, in_scope), evidence.in_range, _quarantined(dest)
    )
    found.add(
        reconcile_digests(
            evidence.digests,
            evidence.present,
            evidence.converted,
            digests_present=evidence.digests_present,
            checked=evidence.in_range.keys(),
        )
    )
    table_files, compacted = _list_partitions(dest, evidence.batches)
    found.add(
        reconcile_counts(evidence.batches, table_files, compacted=compacted, table_url=dest.url())
    )
    return found


def _quarantined(dest: Storage) -> dict[str, int]:
    """URL -> size of every object the quarantine holds: one LIST, one GET per file."""
    return {
        entry.url: entry.size
        for path in quarantine_files(dest)
        for entry in read_quarantine_file(dest, path)
    }


def repair_objects(
    source: Storage,
    dest: Storage,
    evidence: _Evidence,
    keys: Iterable[str],
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Convert the objects no record names, in ingest's batches, recording state after each."""
    settle = timedelta(minutes=settings.settle_minutes)
    works: dict[str, DayWork] = {}
    for key in sorted(set(keys)):
        folder = evidence.folders.get(posixpath.dirname(key))
        if folder is None or key not in folder.stored:
            continue  # missing from the source: nothing to convert
        path = folder.folder.path
        if path not in works:
            folder_key = trail_key(folder.folder.trail.path, local=source.is_local)
            state_path = day_state_path(dest, folder_key, folder.folder.day)
            state, version = load_day(dest, state_path)
            listed = [
                Listed(name, settled(stored, name, now, settle))
                for name, stored in ((s.path[len(path) + 1 :], s) for s in folder.stored.values())
            ]
            works[path] = DayWork(
                folder.folder, state_path, state, version, listed, trail_key=folder_key
            )
        stored = folder.stored[key]
        works[path].pending.append(
            PendingObject(stored, source.url(stored.path), folder.parsed[key])
        )
    run = new_summary(source, dest)
    known = KnownEventIds(dest)
    converted: list[str] = []

    def convert(*args: Any, **kwargs: Any) -> BatchOutcome:
        outcome = convert_batch(*args, **kwargs, known=known)
        converted.extend(outcome.converted_urls)
        return outcome

    convert_days(
        source, dest, list(works.values()), run, settings=settings, now=now, converter=convert
    )
    return _repair_json(run, converted)


def _repair_json(run: RunSummary, converted: list[str]) -> dict[str, Any]:
    return {
        "objects_converted": len(converted),
        "events_written": run.events_written,
        "insight_events_written": run.insight_events_written,
        "duplicates_dropped": run.duplicates_dropped,
        "objects_quarantined": run.objects_quarantined,
        "problems": [p.as_dict() for p in run.problems],
    }


def _list_folder(source: Storage, folder: DayFolder, evidence: _Evidence) -> _Folder:
    """Every log object in a day folder (a LIST per 1,000), once per run."""
    where = awslogs_key(folder.path)
    if where in evidence.folders:
        return evidence.folders[where]
    listed = _Folder(folder, {}, {})
    evidence.counts["day_folders_listed"] += 1
    for stored in source.list_after(folder.path):
        url = source.url(stored.path)
        try:
            parsed = parse_key(url)
        except UnrecognisedKeyError:
            evidence.counts["objects_unrecognised"] += 1  # ingest reports them each run
            continue
        if parsed.kind in TABLE_OF_KIND:
            key = awslogs_key(url)
            listed.stored[key] = stored
            listed.parsed[key] = parsed
            evidence.present[key] = SourceObject(url, stored.size, stored.etag)
    evidence.folders[where] = listed
    return listed


def _reload_records(dest: Storage, evidence: _Evidence) -> None:
    """Read every day's records again (after a repair wrote new ones)."""
    days = sorted(evidence.record_days)
    evidence.record_days.clear()
    evidence.converted.clear()
    evidence.converted_in_range.clear()
    evidence.batches.clear()
    evidence.counts["records_read"] = 0
    _load_records(dest, evidence, days)


def _load_records(dest: Storage, evidence: _Evidence, days: Iterable[date]) -> None:
    """Read the conversion records of delivery days: one LIST per day, one GET per record."""
    for day in [d for d in days if d not in evidence.record_days]:
        evidence.record_days.add(day)
        folder = dest.path(converted_day_folder(day))
        paths = [s.path for s in dest.list_after(folder) if s.path.endswith(".json")]
        for path, data in sorted(dest.read_many(paths).items()):
            if not isinstance(data, bytes):
                evidence.problems.append(
                    Problem(dest.url(path), f"could not read conversion record: {data!r}")
                )
                continue
            evidence.counts["records_read"] += 1
            objects, counts = read_converted(data, dest.url(path))
            evidence.batches.append(counts)
            for entry in objects:
                key = awslogs_key(entry.url)
                _remember(evidence.converted, evidence.present.get(key), key, entry)
                if day in evidence.range_days:
                    _remember(evidence.converted_in_range, evidence.present.get(key), key, entry)


def _remember(
    converted: dict[str, ConvertedObject],
    listed: SourceObject | None,
    key: str,
    entry: ConvertedObject,
) -> None:
    """Keep the record of the version the source holds now, if several name the object."""
    if key not in converted or (listed is not None and same_version(listed, entry)):
        converted[key] = entry


def _read_digests(
    source: Storage, folder: DayFolder, evidence: _Evidence, *, signatures: bool
) -> None:
    """List a digest folder and read its digests (small gzip JSON files); with
    ``signatures`` one by one, for the signature in each one's metadata."""
    evidence.counts["digest_folders_listed"] += 1
    paths = []
    for stored in source.list_after(folder.path):
        evidence.digests_present.add(awslogs_key(stored.path))
        if stored.path.endswith(".json.gz"):
            paths.append(stored.path)
    fetched: dict[str, bytes | Exception] = {}
    if signatures:
        for path in paths:
            try:
                fetched[path], metadata = source.read_with_metadata(path)
            except OSError as error:
                fetched[path] = error
                continue
            evidence.signatures[source.url(path)] = (metadata.get("signature"), folder.trail.region)
    else:
        fetched = source.read_many(paths)
    for path, data in sorted(fetched.items()):
        url = source.url(path)
        if not isinstance(data, bytes):
            evidence.problems.append(Problem(url, f"could not read digest: {data!r}"))
            continue
        try:
            evidence.digests.append(parse_digest(url, data))
        except DigestFormatError as error:
            evidence.problems.append(Problem(url, error.reason))


def check_signatures(evidence: _Evidence, public_keys: PublicKeys) -> None:
    """Each digest read is signed, by a key CloudTrail published, over what it holds."""
    by_region: dict[str, list[Digest]] = {}
    for digest in evidence.digests:
        if digest.key in evidence.signatures:
            by_region.setdefault(evidence.signatures[digest.key][1], []).append(digest)
    for region, digests in sorted(by_region.items()):
        times = [_utc(d.start_time) for d in digests] + [_utc(d.end_time) for d in digests]
        keys = public_keys(region, min(times) - timedelta(hours=1), max(times) + timedelta(hours=1))
        for digest in digests:
            signature = evidence.signatures[digest.key][0]
            key = keys.get(digest.fingerprint or "")
            if signature is None:
                reason = "digest has no signature (no x-amz-meta-signature)"
            elif key is None:
                reason = (
                    f"no CloudTrail public key in {region} has fingerprint {digest.fingerprint}"
                )
            elif not signature_valid(digest, signature, key):
                reason = "changed after delivery: the digest's signature does not verify"
            else:
                evidence.counts["digest_signatures_verified"] += 1
                continue
            evidence.problems.append(Problem(digest.key, reason))


def cloudtrail_public_keys(settings: Settings) -> PublicKeys:
    """``cloudtrail:ListPublicKeys`` in a region (paginated), DER by fingerprint.

    Untested against AWS: moto has no ListPublicKeys; the tests pass their own keys.
    """

    def listed(region: str, start: datetime, end: datetime) -> dict[str, bytes]:
        client = boto3_client("cloudtrail", settings, region=region)
        found: dict[str, bytes] = {}
        token: dict[str, str] = {}
        while True:
            page = client.list_public_keys(StartTime=start, EndTime=end, **token)
            for key in page.get("PublicKeyList", []):
                found[key["Fingerprint"]] = _der(key["Value"])
            if not page.get("NextToken"):
                return found
            token = {"NextToken": page["NextToken"]}

    return listed


def _der(value: bytes) -> bytes:
    """A public key as DER: boto3 decodes the blob; some tools hand it on base64 again."""
    return value if value[:1] == b"\x30" else base64.b64decode(value)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _gather_named_elsewhere(
    source: Storage, dest: Storage, evidence: _Evidence, trails: list[TrailFolder]
) -> None:
    """List the folders and read the records of log files the digests name outside the range,
    and look up previous digests the listings did not show (one HEAD each chain)."""
    if not trails:
        return
    root = trails[0].path[: len(trails[0].path) - len(awslogs_key(trails[0].path))]
    by_path = {awslogs_key(t.path): t for t in trails}
    record_days: set[date] = set()
    for digest in evidence.digests:
        for log_file in digest.log_files:
            key = awslogs_key(log_file.key)
            folder = posixpath.dirname(key)
            if folder in evidence.folders:
                continue
            try:
                parsed = parse_key(key)
            except UnrecognisedKeyError:
                continue  # reported as missing: no folder of the layout holds it
            trail_path = posixpath.dirname(posixpath.dirname(posixpath.dirname(folder)))
            trail = by_path.get(trail_path) or TrailFolder(
                root + trail_path, parsed.account, parsed.region, org_id=parsed.org_id
            )
            _list_folder(source, DayFolder(trail, parsed.delivery_date), evidence)
            record_days.add(parsed.delivery_date)
    _load_records(dest, evidence, sorted(record_days))
    listed_folders = {posixpath.dirname(k) for k in evidence.digests_present}
    for digest in evidence.digests:
        if digest.previous_object is None:
            continue
        previous = awslogs_key(digest.previous_object)
        if posixpath.dirname(previous) not in listed_folders and previous not in (
            evidence.digests_present
        ):
            evidence.counts["digests_looked_up"] += 1
            if source.exists(root + previous):
                evidence.digests_present.add(previous)


def _list_partitions(
    dest: Storage, batches: Iterable[BatchCounts]
) -> tuple[dict[str, int], set[str]]:
    """Sizes of the files in every partition the batches wrote (a LIST each), and which of
    those partitions compaction has rewritten."""
    files: dict[str, int] = {}
    compacted: set[str] = set()
    partitions = {posixpath.dirname(f.path) for b in batches for f in b.files}
    for partition in sorted(partitions):
        for stored in dest.list_dir(dest.path(partition)).files:
            name = posixpath.basename(stored.path)
            files[f"{partition}/{name}"] = stored.size
            if name.startswith(COMPACTED_PREFIX):
                compacted.add(partition)
    return files, compacted


def _quiet(_: str) -> None:
    return None
