"""Three simulated days of a scheduled ingest every 15 minutes, with the default window, on S3.

Everything that makes a trail hard happens on the way: objects up to 30 minutes
late, one 26 hours late into a closed folder with a name before its mark, history
older than the window, a truncated object later re-uploaded whole, an object
re-uploaded unchanged, a read that fails twice and then succeeds, one that always
fails, a daily compaction and a daily redrive between the runs, a backfill racing
the schedule in a thread, and a run SIGKILLed after writing data and before its
state. At the end every event generated is in the table exactly once, except
those of the always-failing object, which the quarantine names.

The clock is simulated (the flows take ``now``); S3 is the moto server reached
through the fault proxy; objects are few and small, so the soak takes about two
minutes. Its figures (runs, objects, events, requests) are printed at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from flows.backfill import run_backfill
from flows.compaction import run_compact
from flows.redriving import run_redrive
from flows.run import run_ingest
from flows.settings import Settings
from flows.storage import Storage
from flows.verification import run_verify
from tests.fault_proxy import FaultPlan, s3_through_proxy
from tests.trail import ACCOUNT_A, Trail, log_key, record, table_rows

ROOT = Path(__file__).parents[2]
LAKE = "s3://lake/cloudtrail/"
REGIONS = ("us-east-1", "eu-west-1")
START = datetime(2024, 5, 1, tzinfo=UTC)
DAYS = 3
TICK = timedelta(minutes=15)
LATENESS = (0, 5, 12, 30)
"""Minutes between an object's name time and its upload, in turn: up to 30 minutes late."""


ATTEMPTS = 3
"""S3 attempts per request in the soak's runs (a run retries; a faulted read fails its run)."""


def soak_settings() -> Settings:
    """Few attempts per request, so a faulted read fails its run quickly (and counts against
    the object); short leases, so the lease of the killed run is taken over in seconds."""
    return Settings(s3_max_attempts=ATTEMPTS, lock_ttl_seconds=20.0, lock_wait_seconds=120.0)


pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class ReadFaults(FaultPlan):
    """GETs of the named keys fail (500) their first ``count`` attempts; nothing else fails."""

    failing: tuple[tuple[str, int], ...] = ()

    def faults(self, identity: str, operation: str, first: bool) -> list[str]:
        method, path = identity.split(" ", 1)
        if method != "GET" or operation != "GET":
            return []
        key = path.split("?", 1)[0].removeprefix("/trail/")
        return ["internal"] * dict(self.failing).get(key, 0)


@dataclass
class Upload:
    """An object that becomes visible in the bucket at ``at`` (simulated time)."""

    at: datetime
    key: str
    body: bytes
    event_ids: list[str]


@dataclass
class Schedule:
    """What the trail delivers and when, and every eventID it generated."""

    uploads: list[Upload] = field(default_factory=list)
    serial: int = 0

    def add(
        self, name_time: datetime, region: str, late_minutes: int = 0, events: int = 2
    ) -> Upload:
        self.serial += 1
        ids = [f"{region}-{self.serial:05d}-{n}" for n in range(events)]
        records = [
            record(i, name_time - timedelta(minutes=3, seconds=n), region, ACCOUNT_A)
            for n, i in enumerate(ids)
        ]
        key = log_key(ACCOUNT_A, region, name_time, f"s{self.serial:05d}")
        body = gzip.compress(json.dumps({"Records": records}).encode())
        upload = Upload(name_time + timedelta(minutes=late_minutes), key, body, ids)
        self.uploads.append(upload)
        return upload

    def due(self, now: datetime) -> list[Upload]:
        return [u for u in self.uploads if u.at <= now]


def build_schedule() -> tuple[Schedule, dict[str, Upload]]:
    schedule = Schedule()
    special: dict[str, Upload] = {}
    # History older than the window, there before the first run (for backfill).
    for day in (date(2024, 4, 27), date(2024, 4, 28)):
        for region in REGIONS:
            schedule.add(datetime(day.year, day.month, day.day, 20, 7, tzinfo=UTC), region)
    hour = 0
    while hour < DAYS * 24:
        for region in REGIONS:
            name_time = START + timedelta(hours=hour, minutes=7)
            schedule.add(name_time, region, LATENESS[(hour + len(region)) % len(LATENESS)])
        hour += 1
    day1 = START
    # 26 hours late into day 1's folder (closed and marked past it by then), name 10:01.
    special["late_26h"] = schedule.add(day1 + timedelta(hours=10, minutes=1), REGIONS[0], 26 * 60)
    special["fails_twice"] = schedule.add(day1 + timedelta(hours=13, minutes=2), REGIONS[1])
    special["always_fails"] = schedule.add(day1 + timedelta(hours=14, minutes=2), REGIONS[0])
    truncated = schedule.add(day1 + timedelta(hours=16, minutes=2), REGIONS[1], events=6)
    special["truncated"] = truncated
    return schedule, special


def expected_event_ids(schedule: Schedule, special: dict[str, Upload]) -> set[str]:
    """Every eventID the soak must find in the table: all generated, less the always-failing
    object's (named in the quarantine instead). What ``verify`` must report complete."""
    lost_for_good = set(special["always_fails"].event_ids)
    return {i for u in schedule.uploads for i in u.event_ids} - lost_for_good


def frozen_ingest(now: datetime, marker: Path) -> None:
    """The ingest of a subprocess, frozen right after its first Parquet PUT (data in, state
    not): the test SIGKILLs it there."""
    original = Storage.write_atomically

    def write_then_freeze(self: Storage, path: str, data: bytes) -> None:
        original(self, path, data)
        if path.endswith(".parquet"):
            marker.write_text(path)
            time.sleep(3600)

    Storage.write_atomically = write_then_freeze  # type: ignore[method-assign]
    run_ingest("s3://trail/", LAKE, now=now, settings=soak_settings())


def kill_mid_run(now: datetime, marker: Path, endpoint: str) -> str:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.integration.test_soak", now.isoformat(), str(marker)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text()):
            if process.poll() is not None:
                pytest.fail(f"the run ended before its first write: {process.stderr.read()!r}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never wrote"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]
    return marker.read_text()


def quarantined_urls() -> dict[str, str]:
    store = Storage(LAKE)
    found = {}
    for stored in store.list_files(store.path("_quarantine")):
        for line in store.read(stored.path).splitlines():
            entry = json.loads(line)
            found[entry["url"]] = entry.get("reason") or ""
    return found


def test_three_days_of_scheduled_runs_lose_nothing_and_keep_every_event_once(s3, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail = Trail(client=client)
    schedule, special = build_schedule()
    settings = soak_settings()
    faults = ReadFaults(
        failing=(
            (special["fails_twice"].key, 2 * ATTEMPTS),  # fails two runs, read by the third
            (special["always_fails"].key, 10_000),
        )
    )
    uploaded: set[int] = set()
    totals: Counter[str] = Counter()
    runs: list[dict] = []
    started = time.monotonic()
    backfill: threading.Thread | None = None
    backfilled: list = []
    killed_on = ""

    def run_backfill_at(now: datetime) -> None:
        history = (date(2024, 4, 27), START.date())  # history and today, which ingest runs on
        backfilled.append(run_backfill("s3://trail/", LAKE, *history, now=now, settings=settings))

    def deliver(now: datetime) -> None:
        for n, upload in enumerate(schedule.uploads):
            if n not in uploaded and upload.at <= now:
                body = upload.body
                if upload is special["truncated"]:
                    body = body[: len(body) // 2]  # cut in the middle; re-uploaded whole later
                trail.put(upload.key, body)
                uploaded.add(n)

    with s3_through_proxy(s3.url, faults) as proxy:
        now = START
        end = START + timedelta(days=DAYS, hours=2)  # the last day closes and settles
        while now <= end:
            deliver(now)
            if now == START + timedelta(days=1, hours=12, minutes=15):
                trail.put(special["truncated"].key, special["truncated"].body)  # whole now
                again = schedule.uploads[10]
                trail.put(again.key, again.body)  # re-uploaded unchanged (replication)
            if now == START + timedelta(days=1, hours=20, minutes=15):  # new objects to convert
                killed_on = kill_mid_run(now, tmp_path / "marker", proxy.url)
            else:
                summary = run_ingest("s3://trail/", LAKE, now=now, settings=settings).as_json()
                runs.append(summary)
                for side in ("source", "table"):
                    totals[side] += summary["requests"][side]["total"]
            if now.hour == 2 and now.minute == 0:
                run_compact(LAKE, today=now.date())
            if now.hour == 3 and now.minute == 0:
                run_redrive(LAKE, settings=settings)
            if now == START + timedelta(hours=6):  # the backfill races the next runs
                backfill = threading.Thread(target=run_backfill_at, args=(now,))
                backfill.start()
            if backfill is not None and now == START + timedelta(hours=7):
                backfill.join(timeout=120)
                assert not backfill.is_alive()
            if now.hour == 0 and now.minute == 0:  # progress of a long test, on the terminal
                print(f"soak: {now:%Y-%m-%d}, {time.monotonic() - started:.0f} s", file=sys.stderr)
            now += TICK
        final_redrive = run_redrive(LAKE, settings=settings)
        verified = run_verify(
            "s3://trail/", LAKE, start=date(2024, 4, 27), end=end.date(), now=end,
            settings=settings,
        ).as_json()  # fmt: skip

    wall = time.monotonic() - started
    # The first run explained the history it did not list; the backfill converted it.
    assert runs[0]["days_outside_window"]["days"] == 2
    assert backfilled and backfilled[0].objects_converted >= 4
    assert killed_on.endswith(".parquet")
    late = [r for r in runs if r["objects_late"]]
    assert late, "the 26-hour-late object was found behind its folder's mark"

    # Every event once; the always-failing object's events nowhere, and it is quarantined.
    counts = Counter(event_id for _, event_id in table_rows(LAKE))
    twice = {e: n for e, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} eventIDs more than once"
    expected = expected_event_ids(schedule, special)
    missing = expected - set(counts)
    assert not missing, f"{len(missing)} eventIDs missing, e.g. {sorted(missing)[:3]}"
    assert set(counts) == expected
    always = f"s3://trail/{special['always_fails'].key}"
    assert "quarantined as unreadable" in quarantined_urls()[always]
    assert [p["key"] for p in final_redrive.as_json()["problems"]] == [always]
    # verify accounts for every object of every delivery day by listings and the conversion
    # records (reading no log object): converted, or held in the quarantine (`always`). The
    # one finding is the truncated object: converted, then replaced by its whole version,
    # which is what verify exists to name (a log file changed after delivery); the re-drive
    # converted the whole version, and the table holds every one of its events (above).
    truncated = f"s3://trail/{special['truncated'].key}"
    findings = [(p["key"], p["reason"].split(":")[0]) for p in verified["problems"]]
    assert set(findings) <= {(truncated, "changed after conversion")}, findings
    assert verified["objects_seen"] == len({u.key for u in schedule.uploads})
    assert verified["objects_not_converted"] == 0
    assert verified["objects_held_in_quarantine"] >= 1

    figures = {
        "simulated_days": DAYS,
        "ingest_runs": len(runs) + 1,  # and the one killed
        "objects": len(schedule.uploads),
        "events": sum(len(u.event_ids) for u in schedule.uploads),
        "events_in_table": sum(counts.values()),
        "requests_source": totals["source"],
        "requests_table": totals["table"],
        "requests_per_run": round((totals["source"] + totals["table"]) / len(runs), 1),
        "proxy_requests": len(proxy.requests),
        "verify_requests": verified["requests"],
        "wall_seconds": round(wall, 1),
    }
    print("soak figures:", json.dumps(figures))


if __name__ == "__main__":  # the frozen run of kill_mid_run, in its own process
    frozen_ingest(datetime.fromisoformat(sys.argv[1]), Path(sys.argv[2]))
