"""Reconciliation as a table of cases: each finding names the object and the reason."""

from __future__ import annotations

from transforms.digest import Digest, DigestLogFile
from transforms.reconcile import (
    BatchCounts,
    ConvertedObject,
    SourceObject,
    TableFile,
    account_for_quarantine,
    reconcile_counts,
    reconcile_digests,
    reconcile_objects,
)

A = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/10/a.json.gz"
B = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/10/b.json.gz"
C = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/10/c.json.gz"
D1 = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/10/d1.json.gz"
D2 = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/10/d2.json.gz"


def listed(key: str, size: int = 100, etag: str | None = None) -> SourceObject:
    return SourceObject(f"s3://trail/{key}", size, etag)


def converted(key: str, size: int = 100, etag: str | None = None, **kw) -> ConvertedObject:
    fields = {"sha256": "aa" * 32, "records": 3, "quarantined": 0, "batch": "b1", **kw}
    return ConvertedObject(f"s3://trail/{key}", size, etag, **fields)


def digest(key: str, logs: dict[str, str], previous: str | None = None, **kw) -> Digest:
    fields = {
        "s3_bucket": "trail",
        "s3_object": key,
        "start_time": "2024-03-10T10:00:00Z",
        "end_time": "2024-03-10T11:00:00Z",
        "previous_bucket": "trail" if previous else None,
        "previous_object": previous,
        "previous_hash": None,
        "previous_signature": None,
        "log_files": tuple(DigestLogFile("trail", k, h) for k, h in logs.items()),
        "sha256": "dd" * 32,
        "backfill": False,
        **kw,
    }
    return Digest(key=f"s3://trail/{key}", **fields)


def reasons(found) -> list[tuple[str, str]]:
    return [(p.key.rsplit("/", 1)[-1], p.reason.split(":")[0]) for p in found.problems]


def test_objects_converted_of_the_same_version_are_accounted_for():
    found = reconcile_objects({A: listed(A)}, {A: converted(A)})
    assert found.problems == []
    assert found.counts["objects_converted"] == 1


def test_an_object_without_a_record_is_not_converted_and_listed_for_repair():
    found = reconcile_objects({A: listed(A), B: listed(B)}, {A: converted(A)})
    assert reasons(found) == [("b.json.gz", "not converted")]
    assert found.not_converted == [B]


def test_a_size_or_etag_change_after_conversion_is_named():
    found = reconcile_objects(
        {A: listed(A, 120), B: listed(B, 100, '"e2"')},
        {A: converted(A, 100), B: converted(B, 100, '"e1"')},
    )
    assert reasons(found) == [("a.json.gz", "changed after conversion")] * 1 + [
        ("b.json.gz", "changed after conversion")
    ]
    assert "120 bytes" in found.problems[0].reason and '"e1"' in found.problems[1].reason


def test_a_converted_object_gone_from_the_source_is_named():
    found = reconcile_objects({}, {A: converted(A)})
    assert reasons(found) == [("a.json.gz", "missing from the source")]


def test_an_object_the_quarantine_holds_at_its_listed_version_is_accounted_for():
    # A never readable (no record), B replaced by a version the re-drive has yet to convert:
    # both held at the size listed now; C quarantined at another size is still named.
    objects = {A: listed(A, 100), B: listed(B, 120), C: listed(C, 90)}
    found = reconcile_objects(objects, {B: converted(B, 100)})
    held = {f"s3://trail/{A}": 100, f"s3://trail/{B}": 120, f"s3://trail/{C}": 80}
    kept = account_for_quarantine(found, objects, held)
    assert reasons(kept) == [("c.json.gz", "not converted")]
    assert kept.not_converted == [C]
    assert kept.counts["objects_quarantined"] == 2
    assert (kept.counts["objects_not_converted"], kept.counts["objects_changed"]) == (1, 0)


def test_quarantined_records_or_damage_count_but_are_no_problem():
    found = reconcile_objects(
        {A: listed(A), B: listed(B)},
        {A: converted(A, quarantined=1), B: converted(B, problem="gzip stream is damaged")},
    )
    assert found.problems == []
    assert found.counts["objects_quarantined"] == 2


def test_digests_name_missing_changed_and_unconverted_log_files():
    present = {A: listed(A), B: listed(B)}
    records = {A: converted(A, sha256="aa" * 32)}
    gone = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/10/gone.json.gz"
    found = reconcile_digests(
        [digest(D1, {A: "bb" * 32, B: "cc" * 32, gone: "ee" * 32})],
        present,
        records,
        digests_present={D1},
    )
    assert reasons(found) == [
        ("a.json.gz", "changed after delivery"),
        ("b.json.gz", "not converted"),
        ("gone.json.gz", "missing from the source"),
    ]
    assert "d1.json.gz" in found.problems[2].reason
    assert found.not_converted == [B]


def test_a_log_file_the_objects_check_reported_is_not_reported_twice():
    found = reconcile_digests(
        [digest(D1, {B: "cc" * 32})], {B: listed(B)}, {}, digests_present={D1}, checked={B}
    )
    assert found.problems == []


def test_matching_hashes_verify_and_a_backfill_digest_says_so():
    found = reconcile_digests(
        [digest(D1, {A: "aa" * 32}, backfill=True)],
        {A: listed(A)},
        {A: converted(A)},
        digests_present={D1},
    )
    assert found.problems == []
    assert found.counts["digest_log_files_verified"] == 1
    assert found.counts["backfill_digests_read"] == 1
    unconverted = reconcile_digests(
        [digest(D1, {B: "aa" * 32}, backfill=True)], {B: listed(B)}, {}, digests_present={D1}
    )
    assert "backfill digest d1.json.gz names it" in unconverted.problems[0].reason


def test_a_missing_previous_digest_is_a_gap_in_the_chain():
    found = reconcile_digests([digest(D2, {}, previous=D1)], {}, {}, digests_present={D2})
    assert reasons(found) == [("d1.json.gz", "missing from the source")]
    assert "gap in the digest chain" in found.problems[0].reason
    linked = reconcile_digests(
        [digest(D1, {}), digest(D2, {}, previous=D1, previous_hash="dd" * 32)],
        {},
        {},
        digests_present={D1, D2},
    )
    assert linked.problems == []
    assert linked.counts["digest_chain_starts"] == 1


def test_a_previous_digest_changed_after_delivery_is_named():
    found = reconcile_digests(
        [digest(D1, {}), digest(D2, {}, previous=D1, previous_hash="00" * 32)],
        {},
        {},
        digests_present={D1, D2},
    )
    assert reasons(found) == [("d1.json.gz", "changed after delivery")]


FILE = "events/region=us-east-1/year=2024/month=03/day=10/part-b1.parquet"


def batch(rows: int = 5, size: int = 900, **kw) -> BatchCounts:
    fields = {"records": 7, "quarantined": 1, "duplicates": 1, **kw}
    return BatchCounts(
        "b1",
        "lake/_state/converted/2024/03/10/b1.json",
        files=(TableFile(FILE, rows, size),),
        **fields,
    )


def test_counts_hold_when_rows_are_records_less_quarantined_and_duplicates():
    found = reconcile_counts([batch()], {FILE: 900}, compacted=set(), table_url="s3://lake")
    assert found.problems == []
    assert found.counts["files_verified"] == 1


def test_a_miscount_or_a_lost_or_replaced_file_is_named():
    arithmetic = reconcile_counts([batch(rows=4)], {FILE: 900}, compacted=(), table_url="s3://l")
    assert reasons(arithmetic) == [("b1.json", "count differs")]
    lost = reconcile_counts([batch()], {}, compacted=(), table_url="s3://lake")
    assert [p.key for p in lost.problems] == [f"s3://lake/{FILE}"]
    assert "the file is gone" in lost.problems[0].reason
    replaced = reconcile_counts([batch()], {FILE: 901}, compacted=(), table_url="s3://lake")
    assert "901 bytes, not 900" in replaced.problems[0].reason


def test_a_compacted_partition_holds_no_batch_files_and_is_no_problem():
    partition = FILE.rsplit("/", 1)[0]
    found = reconcile_counts([batch()], {}, compacted={partition}, table_url="s3://lake")
    assert found.problems == []
    assert found.counts["files_compacted"] == 1
