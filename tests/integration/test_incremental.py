"""Scheduled runs on S3 (moto over HTTP): wave after wave, nothing old re-read or re-listed."""

from __future__ import annotations

import json

import pytest

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.fault_proxy import FaultPlan, s3_through_proxy
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
    # Yesterday's folders closed at 01:00 and are complete, and listed all the same (from their
    # beginning): a complete folder saves re-reading, never listing.
    assert (quiet["days_listed"], quiet["days_complete"]) == (8, 4)
    # Discovery: the bucket, AWSLogs/, the org, 2 accounts, 2 CloudTrail/ = 7; 8 day folders.
    assert source["list"] == 7 + 8
    assert table["put"] == 0
    assert table["get"] == 8  # one state object per day folder
    assert table["list"] == 2  # the pending folders (none), the table's root (no Insights)
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
    # Every done name is kept, the young one too.
    assert [name.split("_")[3] for name in state["done"]] == ["20240310T0900Z", "20240310T1150Z"]

    # An object named 11:45 shows up late: it sorts before 11:50, yet after the mark.
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "1145"))
    later = ingest(trail, at("2024-03-10", "1300"))
    assert later["objects_converted"] == 1
    assert later["objects_skipped"] == {"already_converted": 1}  # 11:50 re-listed, not re-read
    assert later["requests"]["source"]["get"] == 1
    assert_exactly_once(LAKE, trail.event_ids)


def test_a_closed_day_is_complete_and_still_listed_at_no_extra_write(trail):
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-09", "2350"))
    ingest(trail, at("2024-03-10", "0030"))  # 03-09 still open: delivered 40 minutes ago
    after_close = ingest(trail, at("2024-03-10", "0130"))
    assert (after_close["days_listed"], after_close["days_complete"]) == (2, 0)
    settled = ingest(trail, at("2024-03-10", "0145"))
    assert (settled["days_listed"], settled["days_complete"]) == (2, 1)
    assert settled["objects_seen"] == 0  # listed from its beginning; its done object not counted
    assert settled["requests"]["table"]["put"] == 0


def test_the_window_ignores_older_folders_and_zero_means_every_day(trail):
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-01", "1000"))
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-09", "1000"))
    windowed = ingest(trail, at("2024-03-10", "1200"))
    assert windowed["objects_converted"] == 1
    assert windowed["days_outside_window"]["days"] == 1  # 03-01, named with the backfill
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


def test_a_second_wave_into_folders_marked_complete_reaches_the_table(trail):
    # Wave 1 over three days; every closed folder is then complete.
    for day in ("2024-03-08", "2024-03-09", "2024-03-10"):
        trail.deliver(ACCOUNT_A, "us-east-1", at(day, "1000"))
        trail.deliver(ACCOUNT_A, "us-east-1", at(day, "1100"))
    first = ingest(trail, at("2024-03-10", "1300"), lookback_days=0)
    assert first["objects_converted"] == 6
    # Wave 2 lands in those folders: names before the marks (restored history, replication
    # lag) and after them.
    for day in ("2024-03-08", "2024-03-09"):
        trail.deliver(ACCOUNT_A, "us-east-1", at(day, "0900"))
        trail.deliver(ACCOUNT_A, "us-east-1", at(day, "2300"))
    quiet_window = ingest(trail, at("2024-03-10", "1315"))  # the default window: 09 and 10
    assert quiet_window["objects_converted"] == 2  # yesterday's folder, listed from its start
    assert quiet_window["objects_late"] == 1
    everything = ingest(trail, at("2024-03-10", "1330"), lookback_days=0)
    assert everything["objects_converted"] == 2  # 03-08's two
    assert everything["problems"] == []
    assert_exactly_once(LAKE, trail.event_ids)


def test_a_read_that_failed_is_retried_after_its_day_left_the_window(trail, s3):
    key = trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0900"))
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0905"))
    with s3_through_proxy(s3.url, _failing_get(key)):
        failed = ingest(trail, at("2024-03-10", "1200"), s3_max_attempts=1)
    assert [p["key"] for p in failed["problems"]] == [f"s3://trail/{key}"]
    assert failed["objects_converted"] == 1

    # Five days later the folder is far outside the window, but still pending.
    later = ingest(trail, at("2024-03-15", "1200"))
    assert (later["days_pending"], later["objects_converted"]) == (1, 1)
    assert later["problems"] == []
    assert_exactly_once(LAKE, trail.event_ids)
    after = ingest(trail, at("2024-03-15", "1215"))
    assert after["days_pending"] == 0  # not pending any more: only the window is listed
    assert after["days_listed"] == 2


def test_a_read_that_keeps_failing_is_quarantined_and_redrive_converts_it(trail, s3):
    from flows.redriving import run_redrive

    key = trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0900"))
    with s3_through_proxy(s3.url, _failing_get(key)):
        runs = [
            ingest(trail, at(day, "1200"), s3_max_attempts=1, max_read_attempts=2)
            for day in ("2024-03-10", "2024-03-14")
        ]
    assert runs[0]["objects_quarantined"] == 0
    assert runs[1]["objects_quarantined"] == 1
    assert "quarantined as unreadable" in runs[1]["problems"][-1]["reason"]
    given_up = ingest(trail, at("2024-03-14", "1215"))
    assert (given_up["days_pending"], given_up["objects_seen"]) == (0, 0)  # ingest is done

    redriven = run_redrive(LAKE)
    assert redriven.outcome.objects_cleared == 1
    assert_exactly_once(LAKE, trail.event_ids)


def test_a_first_run_says_which_older_days_it_did_not_list_and_how_to_convert_them(trail):
    from flows.backfill import run_backfill

    for day in ("2024-02-27", "2024-03-01", "2024-03-05"):
        trail.deliver(ACCOUNT_A, "us-east-1", at(day, "1000"))
    first = ingest(trail, at("2024-03-20", "1200"))
    assert first["objects_converted"] == 0
    assert "events_table" not in first  # nothing written: no table folder to name
    outside = first["days_outside_window"]
    assert (outside["days"], outside["first"], outside["last"]) == (3, "2024-02-27", "2024-03-05")
    assert outside["command"] == (
        f"ctparquet backfill {trail.url} {LAKE} --start 2024-02-27 --end 2024-03-05"
    )
    done = run_backfill(trail.url, LAKE, at("2024-02-27").date(), at("2024-03-05").date())
    assert done.objects_converted == 3
    assert_exactly_once(LAKE, trail.event_ids)
    again = ingest(trail, at("2024-03-20", "1215"))
    assert again["days_outside_window"] is None  # not a first run any more
    assert again["events_table"] == LAKE + "events"


def _failing_get(key: str) -> FaultPlan:
    """Every GET of one log object fails (500) until the proxy is gone."""
    return FaultPlan(
        rate=1.0,
        kinds=("internal",),
        methods=("GET",),
        under=f"/trail/{key}",
        always=True,
        first_of_each=False,
    )
