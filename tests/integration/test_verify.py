"""``verify`` against generated trails with digests: every loss is named, a clean trail is clean.

Digests name each log file with the SHA-256 of its uncompressed content (``tests/digests.py``),
as CloudTrail writes them; ingest runs first, as the schedule would, then the trail is damaged.
"""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest
from click.testing import CliRunner

from flows.cli import app
from flows.run import run_ingest
from flows.settings import Settings
from flows.verification import run_verify
from tests.digests import Digests, seeded_trail
from tests.trail import ACCOUNT_A, ACCOUNT_B, ORG, Trail, assert_exactly_once, at

START, END = date(2024, 3, 10), date(2024, 3, 11)
NOW = at("2024-03-12", "0600")
LAKE = "s3://lake/cloudtrail/"


def generate(trail: Trail, *, seed: int = 7, hours: int = 48) -> tuple[Digests, list[str]]:
    """Up to two delivery days, two accounts, two regions; a digest every hour per folder."""
    digests = Digests(trail)
    keys = seeded_trail(
        trail,
        digests,
        seed=seed,
        start=at("2024-03-10", "0000"),
        hours=hours,
        accounts=(ACCOUNT_A, ACCOUNT_B),
        regions=("us-east-1", "eu-west-1"),
    )
    return digests, keys


def ingest(trail: Trail, dest: str) -> dict:
    return run_ingest(trail.url, dest, lookback_days=0, now=NOW, settings=Settings()).as_json()


def verify(trail: Trail, dest: str, **kw) -> dict:
    return run_verify(trail.url, dest, start=START, end=END, now=NOW, **kw).as_json()


def named(summary: dict) -> dict[str, str]:
    return {name(p["key"]): p["reason"] for p in summary["problems"]}


def name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@pytest.fixture
def s3_trail(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    return Trail(client=client)


def test_a_clean_trail_on_s3_is_accounted_for_by_listings_and_records_alone(s3_trail):
    digests, keys = generate(s3_trail, hours=30)
    assert ingest(s3_trail, LAKE)["problems"] == []

    summary = verify(s3_trail, LAKE)
    assert summary["problems"] == []
    assert summary["objects_seen"] == summary["objects_converted"] == len(keys)
    assert summary["digest_log_files"] == summary["digest_log_files_verified"] == len(keys)
    assert summary["digests_read"] == len(digests.keys)
    source, table = summary["requests"]["source"], summary["requests"]["table"]
    # No log object is read: the only GETs on the trail are the digests.
    assert source["get"] == len(digests.keys)
    # 2 accounts x 2 regions x 2 days of log folders + 3 days of digest folders (the day
    # after the range names the range's last hour), one page each, plus discovery.
    assert summary["day_folders_listed"] == 8
    assert summary["digest_folders_listed"] == 12
    discovery = source["list"] - 8 - 12
    assert 0 < discovery <= 12
    # The table: a LIST per day of records, a GET per record, a LIST per partition written.
    assert table["get"] == summary["records_read"]
    assert table["put"] == 0


def test_a_deleted_a_changed_and_a_replaced_log_file_and_a_lost_table_file_are_named(s3_trail):
    _, keys = generate(s3_trail, seed=11, hours=30)
    changed_before = keys[3]  # altered after delivery, before ingest read it
    s3_trail.put(changed_before, gzip.compress(b'{"Records": []}'))
    assert ingest(s3_trail, LAKE)["problems"] == []
    deleted, replaced = keys[0], keys[5]
    s3_trail.delete(deleted)
    s3_trail.put(replaced, gzip.compress(json.dumps({"Records": []}).encode()))
    client = s3_trail.client
    part = next(
        o["Key"]
        for o in client.list_objects_v2(Bucket="lake", Prefix="cloudtrail/events/")["Contents"]
    )
    client.delete_object(Bucket="lake", Key=part)

    summary = verify(s3_trail, LAKE)
    problems = named(summary)
    assert problems[name(deleted)].startswith("missing from the source")
    assert problems[name(changed_before)].startswith("changed after delivery")
    assert problems[name(replaced)].startswith("changed after conversion")
    assert problems[name(part)].startswith("count differs")
    assert "the file is gone" in problems[name(part)]
    result = CliRunner().invoke(
        app,
        [
            "verify",
            s3_trail.url,
            LAKE,
            "--start",
            "2024-03-10",
            "--end",
            "2024-03-11",
            "--json",
            "--no-prefect",
        ],
    )
    assert result.exit_code == 3, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert {p["key"] for p in last["problems"]} == {p["key"] for p in summary["problems"]}


def test_a_late_object_named_only_by_a_backfill_digest_is_found_and_repaired(tmp_path):
    trail = Trail(root=tmp_path / "trail")
    dest = str(tmp_path / "lake")
    digests, keys = generate(trail, seed=3)
    assert ingest(trail, dest)["problems"] == []
    # Delivered late into a folder of a week before (outside the range), never listed by a
    # scheduled run; only a backfill digest in the range names it.
    late = trail.deliver(ACCOUNT_B, "eu-west-1", at("2024-03-03", "2300"), events=4)
    backfill = digests.write(
        ACCOUNT_B, "eu-west-1", at("2024-03-11", "0930"), [late], backfill=True
    )
    assert "_backfill.json.gz" in backfill and "/2024/03/11/" in backfill

    found = verify(trail, dest)
    assert named(found) == {
        late.rsplit("/", 1)[-1]: f"not converted: backfill digest {backfill.rsplit('/', 1)[-1]} "
        "names it"
    }
    assert found["backfill_digests_read"] == 1

    repaired = verify(trail, dest, repair=True)
    assert repaired["problems"] == []
    assert repaired["repair"]["objects_converted"] == 1
    assert repaired["repair"]["events_written"] == 4
    again = verify(trail, dest)
    assert again["problems"] == []
    assert again["digest_log_files_verified"] == len(keys) + 1
    assert_exactly_once(dest, trail.event_ids)


def test_an_object_the_table_misses_in_the_range_is_repaired_once(tmp_path):
    trail = Trail(root=tmp_path / "trail")
    dest = str(tmp_path / "lake")
    generate(trail, seed=5)
    ingest(trail, dest)
    # Sorts before every name of its folder: a scheduled run lists after the mark, never sees it.
    missed = trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0001"), unique="0000early")
    first = verify(trail, dest)
    assert named(first) == {
        missed.rsplit("/", 1)[-1]: "not converted: no conversion record names it"
    }
    assert verify(trail, dest, repair=True)["repair"]["objects_converted"] == 1
    assert verify(trail, dest)["problems"] == []
    assert_exactly_once(dest, trail.event_ids)


def test_a_deleted_digest_is_a_gap_in_the_chain(tmp_path):
    trail = Trail(root=tmp_path / "trail")
    dest = str(tmp_path / "lake")
    digests, _ = generate(trail, seed=9)
    ingest(trail, dest)
    gone = digests.keys[40]
    trail.delete(gone)
    summary = verify(trail, dest)
    [(name, reason)] = named(summary).items()
    assert name == gone.rsplit("/", 1)[-1]
    assert reason.startswith("missing from the source: a gap in the digest chain")
    # The log files it named are still found converted by the objects check.
    assert summary["objects_not_converted"] == 0


def test_the_verify_flow_runs_under_prefect(prefect_harness, tmp_path):
    from flows.verify import verify as verify_flow

    trail = Trail(root=tmp_path / "trail")
    dest = str(tmp_path / "lake")
    _, keys = generate(trail, seed=13)
    ingest(trail, dest)
    result = verify_flow(trail.url, dest, start=START, end=END, now=NOW)
    assert result["problems_count"] == 0
    assert result["objects_converted"] == len(keys)


def test_digest_signatures_verify_and_a_rewritten_digest_does_not(s3_trail):
    # CloudTrail's key pair stands in as one made here: moto has no ListPublicKeys.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    asked: list[str] = []

    def public_keys(region, start, end):
        asked.append(region)
        assert start < end
        return {"31e8b5433410dfb61a9dc45cc65b22ff": public}

    digests = Digests(
        s3_trail, sign=lambda text: private.sign(text, padding.PKCS1v15(), hashes.SHA256())
    )
    seeded_trail(
        s3_trail,
        digests,
        seed=17,
        start=at("2024-03-10", "2000"),
        hours=6,
        accounts=(ACCOUNT_A,),
        regions=("us-east-1",),
    )
    ingest(s3_trail, LAKE)
    clean = verify(s3_trail, LAKE, signatures=True, public_keys=public_keys)
    assert clean["problems"] == []
    assert clean["digest_signatures_verified"] == len(digests.keys) == 6
    assert asked == ["us-east-1"]

    # Rewritten in place with its old signature: its content no longer matches what was signed.
    forged = digests.keys[2]
    document = json.loads(gzip.decompress(s3_trail.bodies[forged]))
    document["oldestEventTime"] = "2024-03-10T00:00:00Z"
    s3_trail.put(
        forged,
        gzip.compress(json.dumps(document).encode()),
        s3_trail.client.head_object(Bucket="trail", Key=forged)["Metadata"],
    )
    found = verify(s3_trail, LAKE, signatures=True, public_keys=public_keys)
    reasons = [p["reason"] for p in found["problems"] if name(p["key"]) == name(forged)]
    # The next digest names the forged one's original hash: the chain says so too.
    assert reasons == [
        "changed after delivery: the digest's signature does not verify",
        "changed after delivery: this digest's SHA-256 is not the previousDigestHashValue "
        f"that digest {name(digests.keys[3])} names",
    ], found["problems"]
    assert len(found["problems"]) == 2
    assert found["digest_signatures_verified"] == 5


def test_a_source_of_one_account_answers_for_that_account_only(tmp_path):
    trail = Trail(root=tmp_path / "trail")
    dest = str(tmp_path / "lake")
    _, keys = generate(trail, seed=21, hours=6)
    ingest(trail, dest)
    account = tmp_path / "trail" / "AWSLogs" / ORG / ACCOUNT_A
    summary = run_verify(str(account), dest, start=START, end=END, now=NOW).as_json()
    assert summary["problems"] == []
    mine = [k for k in keys if f"/{ACCOUNT_A}/" in k]
    assert 0 < summary["objects_converted"] == len(mine) < len(keys)
    assert summary["digest_log_files_verified"] == len(mine)
