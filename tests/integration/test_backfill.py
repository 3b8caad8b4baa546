"""Backfill: planned units, resumable, the same table as ingest, and on a Dask LocalCluster."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from flows.backfill import run_backfill
from flows.cli import EXIT_OK, app
from flows.ingest import run_ingest
from flows.settings import Settings
from tests.trail import ACCOUNT_A, ACCOUNT_B, Trail, assert_exactly_once, at, table_rows

NOW = at("2024-03-20")


@pytest.fixture
def trail(s3):
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail = Trail(client=client)
    for account in (ACCOUNT_A, ACCOUNT_B):
        for region in ("us-east-1", "eu-west-1"):
            for day in ("2024-03-01", "2024-03-02"):
                trail.deliver(account, region, at(day, "0003"), events=3)
                trail.deliver(account, region, at(day, "1400"), events=2)
    return trail


def test_backfill_is_resumable_narrowable_and_writes_what_ingest_writes(trail):
    settings = Settings(lookback_days=0)
    run_ingest(trail.url, "s3://lake/by-ingest/", now=NOW, settings=settings)

    # A first, narrowed backfill; then the full range converts only what is missing.
    part = run_backfill(
        trail.url, "s3://lake/by-backfill/", date(2024, 3, 2), date(2024, 3, 2),
        accounts=[ACCOUNT_A], regions=["eu-west-1"], now=NOW, settings=settings,
    )  # fmt: skip
    assert part.objects_converted == 2
    full = run_backfill(
        trail.url, "s3://lake/by-backfill/", date(2024, 3, 1), date(2024, 3, 2),
        now=NOW, settings=settings,
    )  # fmt: skip
    assert full.objects_converted == 16 - 2
    assert full.days_complete == 1  # the narrowed unit, done before
    assert sorted(table_rows("s3://lake/by-backfill/")) == sorted(
        table_rows("s3://lake/by-ingest/")
    )
    assert_exactly_once("s3://lake/by-backfill/", trail.event_ids)

    again = run_backfill(
        trail.url, "s3://lake/by-backfill/", date(2024, 3, 1), date(2024, 3, 2),
        now=NOW, settings=settings,
    )  # fmt: skip
    # Complete saves re-reading, never listing (ADR 0013): every unit is listed, none read.
    assert (again.objects_converted, again.days_complete, again.days_listed) == (0, 8, 8)
    assert again.as_json()["requests"]["source"]["get"] == 0


def test_the_backfill_flow_on_a_dask_local_cluster_equals_the_local_run(
    prefect_harness, trail, monkeypatch
):
    """Two worker processes; they report to the harness's API (no Prefect server each)."""
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill, with_dask

    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    local = backfill(trail.url, "s3://lake/local/", date(2024, 3, 1), date(2024, 3, 2), now=NOW)
    assert local["units"] == 8
    assert local["units_failed"] == 0
    on_dask = with_dask("local", Settings(dask_local_workers=2))(
        trail.url, "s3://lake/dask/", date(2024, 3, 1), date(2024, 3, 2), now=NOW
    )
    assert on_dask["units_failed"] == 0
    assert on_dask["objects_converted"] == local["objects_converted"] == 16
    assert on_dask["requests"]["source"]["get"] == 16  # counted on the workers, summed here
    assert sorted(table_rows("s3://lake/dask/")) == sorted(table_rows("s3://lake/local/"))
    assert_exactly_once("s3://lake/dask/", trail.event_ids)


def test_cli_backfill_json_summary(trail):
    result = CliRunner().invoke(
        app,
        [
            "backfill", trail.url, "s3://lake/cli/", "--start", "2024-03-01", "--end",
            "2024-03-01", "--account", ACCOUNT_B, "--region", "us-east-1", "--json", "--no-prefect",
        ],
    )  # fmt: skip
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["objects_converted"] == 2
    assert summary["events_written"] == 5
    assert summary["requests"]["source"]["get"] == 2


def test_cli_backfill_refuses_an_inverted_range(trail):
    result = CliRunner().invoke(
        app,
        ["backfill", trail.url, "s3://lake/x/", "--start", "2024-03-02", "--end", "2024-03-01",
         "--json", "--no-prefect"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "start 2024-03-02 is after end 2024-03-01" in result.stdout
