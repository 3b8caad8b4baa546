"""S3 requests of ``verify`` over a trail delivered as CloudTrail does (moto server over HTTP).

    python -m tests.benchmarks.verify_requests [--accounts 2] [--regions 5] [--days 2]
        [--every-minutes 15] [--schedule-minutes 60]

Delivers a log object every ``--every-minutes`` per (account, region) folder with an
hourly digest per folder, converts it with scheduled ingests every
``--schedule-minutes`` (so a day has as many conversion records as a schedule makes),
then reports the requests of ``verify`` over those days, of a second one, and of a
``--repair`` that converts one object a scheduled run could not have listed. The
counts do not depend on the machine; rerun freely.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from flows.run import run_ingest
from flows.settings import Settings
from flows.verification import run_verify
from tests.digests import Digests
from tests.s3_server import moto_server
from tests.trail import Trail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--every-minutes", type=int, default=15)
    parser.add_argument("--schedule-minutes", type=int, default=60)
    args = parser.parse_args()
    accounts = [f"{100000000000 + n:012d}" for n in range(args.accounts)]
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
    regions = regions[: args.regions]
    first = datetime(2024, 6, 1, tzinfo=UTC)
    settings = Settings()  # the production window: today and yesterday

    with moto_server() as s3:
        client = s3.client()
        client.create_bucket(Bucket="trail")
        client.create_bucket(Bucket="lake")
        trail = Trail(client=client)
        digests = Digests(trail)
        started = time.perf_counter()
        runs = 0
        clock = first
        end = first + timedelta(days=args.days)
        hour_keys: dict[tuple[str, str], list[str]] = {}
        while clock < end:
            for account in accounts:
                for region in regions:
                    key = trail.deliver(account, region, clock + timedelta(minutes=1), events=2)
                    hour_keys.setdefault((account, region), []).append(key)
            clock += timedelta(minutes=args.every_minutes)
            if clock.minute == 0:  # the hour's digests
                for (account, region), keys in hour_keys.items():
                    digests.write(account, region, clock + timedelta(seconds=31), keys)
                hour_keys = {}
            if (clock - first) % timedelta(minutes=args.schedule_minutes) == timedelta(0):
                run_ingest("s3://trail/", "s3://lake/ct/", now=clock, settings=settings)
                runs += 1
        delivered = len(trail.event_ids) // 2
        print(
            f"{delivered:,} log objects and {len(digests.keys):,} digests delivered, "
            f"{runs} scheduled ingests, in {time.perf_counter() - started:.0f} s"
        )
        now = end + timedelta(hours=6)
        last = (end - timedelta(days=1)).date()
        rows = {}
        rows["verify"] = run_verify(
            "s3://trail/", "s3://lake/ct/", start=first.date(), end=last, now=now
        ).as_json()
        # Late, into a closed folder, sorting before its mark: no scheduled run lists it.
        trail.deliver(accounts[0], regions[0], first + timedelta(minutes=0), unique="0early")
        rows["verify --repair (one missed object)"] = run_verify(
            "s3://trail/", "s3://lake/ct/", start=first.date(), end=last, now=now, repair=True
        ).as_json()
        rows["verify again"] = run_verify(
            "s3://trail/", "s3://lake/ct/", start=first.date(), end=last, now=now
        ).as_json()

    folders = len(accounts) * len(regions)
    print(
        f"\n{folders} trail folders x {args.days} delivery days verified; an object every "
        f"{args.every_minutes} min, ingest every {args.schedule_minutes} min\n"
    )
    print("| run | problems | logs LIST | logs GET | table LIST | table GET | table PUT | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, summary in rows.items():
        source, table = summary["requests"]["source"], summary["requests"]["table"]
        print(
            f"| {name} | {summary['problems_count']} | {source['list']} | {source['get']} | "
            f"{table['list']} | {table['get']} | {table['put']} | {summary['seconds']} |"
        )
    summary = rows["verify"]
    print(
        "\n"
        + json.dumps(
            {
                k: summary[k]
                for k in (
                    "day_folders_listed",
                    "digest_folders_listed",
                    "digests_read",
                    "records_read",
                    "batches_checked",
                    "objects_seen",
                    "digest_log_files_verified",
                )
            }
        )
    )


if __name__ == "__main__":
    main()
