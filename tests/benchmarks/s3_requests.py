"""S3 requests of scheduled runs over a trail with a long history (moto server over HTTP).

    python -m tests.benchmarks.s3_requests [--objects 10000] [--accounts 2] [--regions 5]
                                           [--steady-files 20 200]

Builds a trail of ``--objects`` log objects spread over accounts x regions x days
(10 objects a day per folder), converts the history once, then reports the
requests of: a scheduled run with nothing new, and one with a new object in
each of today's folders. Then the steady state: one folder whose objects were
converted one batch each, so today's partition holds ``--steady-files`` files
(as it does before the daily compaction), and a scheduled run with one new
object in it, whose events go to that partition. The counts do not depend on
the machine; rerun freely.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.ingest import run_ingest
from flows.settings import Settings
from tests.s3_server import moto_server
from tests.trail import ORG, log_key, record

PER_FOLDER_DAY = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--steady-files", type=int, nargs="*", default=[20, 200])
    args = parser.parse_args()
    accounts = [f"{100000000000 + n:012d}" for n in range(args.accounts)]
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
    regions = regions[: args.regions]
    days = max(1, args.objects // (len(accounts) * len(regions) * PER_FOLDER_DAY))
    today = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    settings = Settings(lookback_days=2)

    with moto_server() as s3:
        client = s3.client()
        client.create_bucket(Bucket="trail")
        client.create_bucket(Bucket="lake")
        serial = 0

        def deliver(account: str, region: str, at: datetime) -> None:
            nonlocal serial
            serial += 1
            body = {"Records": [record(f"e{serial}", at - timedelta(minutes=5), region, account)]}
            key = log_key(account, region, at, f"u{serial:06d}", org=ORG)
            client.put_object(
                Bucket="trail", Key=key, Body=gzip.compress(json.dumps(body).encode())
            )

        started = time.perf_counter()
        for day in range(days, 0, -1):  # history: the days before today
            for account in accounts:
                for region in regions:
                    for n in range(PER_FOLDER_DAY):
                        deliver(account, region, today - timedelta(days=day, minutes=10 * n))
        print(f"{serial:,} objects of history written in {time.perf_counter() - started:.0f} s")

        history = run_ingest(
            "s3://trail/", "s3://lake/ct/", lookback_days=0, now=today, settings=settings
        )
        print(f"history converted: {history.objects_converted:,} objects")
        rows = {}
        rows["no-op run"] = run_ingest(
            "s3://trail/", "s3://lake/ct/", now=today, settings=settings
        ).as_json()
        for account in accounts:
            for region in regions:
                deliver(account, region, today - timedelta(minutes=30))
        rows["run with new objects"] = run_ingest(
            "s3://trail/", "s3://lake/ct/", now=today + timedelta(minutes=15), settings=settings
        ).as_json()
        rows.update(steady_state(client, sorted(args.steady_files), today, settings))

    folders = len(accounts) * len(regions)
    print(
        f"\n{folders} trail folders ({len(accounts)} accounts x {len(regions)} regions), "
        f"{days} days of history, look-back 2 days\n"
    )
    print("| run | objects read | logs LIST | logs GET | table LIST | table GET | table PUT "
          "| table other |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, summary in rows.items():
        source, table = summary["requests"]["source"], summary["requests"]["table"]
        print(
            f"| {name} | {summary['objects_converted']} | {source['list']} | {source['get']} "
            f"| {table['list']} | {table['get']} | {table['put']} | {table['other']} |"
        )
    print("\nby operation:", json.dumps({k: v["requests"] for k, v in rows.items()}, indent=1))


def steady_state(
    client: Any, sizes: list[int], today: datetime, settings: Settings
) -> dict[str, dict[str, Any]]:
    """Scheduled runs on a partition of each of ``sizes`` files: one new object each time."""
    client.create_bucket(Bucket="busy")
    one_file_each = Settings(lookback_days=2, batch_objects=1)
    account, region = "100000000000", "us-east-1"
    delivered = 0

    def deliver(at: datetime) -> None:
        nonlocal delivered
        delivered += 1
        body = {"Records": [record(f"s{delivered}", at - timedelta(minutes=1), region, account)]}
        key = log_key(account, region, at, f"s{delivered:06d}", org=None)
        client.put_object(Bucket="busy", Key=key, Body=gzip.compress(json.dumps(body).encode()))

    rows = {}
    start = today.replace(hour=1)
    for size in sizes:
        while delivered < size:  # today's partition grows a file per batch
            deliver(start + timedelta(seconds=30 * delivered))
        run_ingest("s3://busy/", "s3://lake/busy/", now=today, settings=one_file_each)
        deliver(start + timedelta(seconds=30 * delivered))
        summary = run_ingest("s3://busy/", "s3://lake/busy/", now=today, settings=settings)
        rows[f"steady state: partition of {size} files, one new object"] = summary.as_json()
    return rows


if __name__ == "__main__":
    main()
