"""Scheduled runs on S3 (moto over HTTP): wave after wave, nothing old re-read or re-listed."""

from __future__ import annotations

import json

import pytest

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.trail import ACCOUNT_A, ACCOUNT_B, Trail, assert_exactly_once, at

LAKE = "s3://lake/cloudtrail/"


@pytest.fixture
def trail(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    return Trail(client=client)


def ingest(trail, now, lookback_days=2, **settings) -> dict:
    return run_ingest(
        trail.url, LAKE, lookback_days=lookback_days, now=now, settings=Settings(**settings)
    ).as_json()


def test_waves_of_new_objects_are_read_once_and_a_quiet_run_reads_no_log(trail):
    # Yesterday's and today's folders, two accounts of an organisation, two regions.
    for account in (ACCOUNT_A, ACCOUNT_B):
        for region in ("us-east-1", "eu-west-1"):
            trail.deliver(account, region, at("2024-03-09", "2210"))
            trail.deliver(account, region, at("2024-03-10", "0905"))
    first = ingest(trail, at("2024-03-10", "1200"))
    assert first["objects_converted"] == 8
    assert first["requests"]["source"]["get"] == 8
    assert first["days_listed"] == 8  # 2 accounts x 2 regions x 2 days
    assert first["problems"] == []

    # Wave 2: three new objects today; only they are read.
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "1005"))
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "1010"))
    trail.deliver(ACCOUNT_B, "eu-west-1", at("2024-03-10", "1015"))
    second = ingest(trail, at("2024-03-10", "1215"))
    assert second["objects_converted"] == 3
    assert second["requests"]["source"]["get"] == 3
    assert second["requests"]["source"]["by_operation"].keys() == {"ListObjectsV2", "GetObject"}

    # Nothing new: no log object read, no state rewritten, a LIST per folder and level only.
    quiet = ingest(trail, at("2024-03-10", "1230"))
    source, table = quiet["requests"]["source"], quiet["requests"]["table"]
    assert quiet["objects_converted"] == 0
    assert quiet["bytes_read"] == 0
    assert source["get"] == 0
    # Yesterday's folders closed at 01:00 and were marked complete: only today's are listed.
    assert (quiet["days_listed"], quiet["days_complete"]) == (4, 4)
    # Discovery: the bucket, AWSLogs/, the org, 2 accounts, 2 CloudTrail/ = 7; 4 day folders.
    assert source["list"] == 7 + 4
    assert table["put"] == 0
    assert table["get"] == 8  # one state object per day folder
    assert_exactly_once(LAKE, trail.event_ids)


def test_the_mark_waits_for_young_objects_so_a_late_upload_that_sorts_before_is_not_missed(trail):
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0900"))
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "1150"))  # 10 minutes old at 12:00
    ingest(trail, at("2024-03-10", "1200"))
    state = json.loads(
        trail.client.get_object(
            Bucket="lake",
            Key=f"cloudtrail/_state/days/trail/AWSLogs/o-abcdef1234/{ACCOUNT_A}/CloudTrail/"
            "us-east-1/2024/03/10.json",
        )["Body"].read()
    )
    assert state["mark"].startswith(f"{ACCOUNT_A}_CloudTrail_us-east-1_20240310T0900Z")
    assert len(state["done"]) == 1
    assert state["done"][0].startswith(f"{ACCOUNT_A}_CloudTrail_us-east-1_20240310T1150Z")

    # An object named 11:45 shows up late: it sorts before 11:50, yet after the mark.
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "1145"))
    later = ingest(trail, at("2024-03-10", "1300"))
    assert later["objects_converted"] == 1
    assert later["objects_skipped"] == {"already_converted": 1}  # 11:50 re-listed, not re-read
    assert later["requests"]["source"]["get"] == 1
    assert_exactly_once(LAKE, trail.event_ids)


def test_a_closed_day_is_never_listed_again(trail):
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-09", "2350"))
    ingest(trail, at("2024-03-10", "0030"))  # 03-09 still open: delivered 40 minutes ago
    after_close = ingest(trail, at("2024-03-10", "0130"))
    assert (after_close["days_listed"], after_close["days_complete"]) == (2, 0)
    settled = ingest(trail, at("2024-03-10", "0145"))
    assert (settled["days_listed"], settled["days_complete"]) == (1, 1)
    assert settled["requests"]["table"]["put"] == 0


def test_the_window_ignores_older_folders_and_zero_means_every_day(trail):
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-01", "1000"))
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-09", "1000"))
    windowed = ingest(trail, at("2024-03-10", "1200"))
    assert windowed["objects_converted"] == 1
    everything = ingest(trail, at("2024-03-10", "1200"), lookback_days=0)
    assert everything["objects_converted"] == 1
    assert everything["days_complete"] == 1  # 03-09: closed and done, not listed again
    assert_exactly_once(LAKE, trail.event_ids)


def test_the_default_window_is_today_and_yesterday(monkeypatch):
    monkeypatch.delenv("CTPARQUET_LOOKBACK_DAYS", raising=False)
    assert Settings().lookback_days == 2
    assert Settings().settle_minutes == 60


def test_a_stray_key_in_a_day_folder_is_reported_once_then_passed(trail):
    key = trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0900"))
    trail.client.put_object(Bucket="trail", Key=key.replace(".json.gz", ".tmp"), Body=b"")
    first = ingest(trail, at("2024-03-10", "1200"))
    assert first["objects_converted"] == 1
    assert first["objects_skipped"] == {"unrecognised_key": 1}
    assert first["problems"][0]["key"].endswith(".tmp")
    second = ingest(trail, at("2024-03-10", "1215"))
    assert second["problems"] == []
    assert second["objects_seen"] == 0  # both behind the mark now
