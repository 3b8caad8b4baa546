"""Each command starts with only what it uses: no Prefect without a Prefect API, no AWS SDK
for local folders, no Arrow, Polars or DuckDB for the help, no typer at all (the CLI is
click) and no rich where nothing is printed for people (``--json``).

Structural, not timed (times are measured by ``python -m tests.benchmarks.startup``):
each command runs in a fresh interpreter, as a user runs it, and the modules it
imported are read from that interpreter at its exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_OK, EXIT_PROBLEMS, app
from tests.benchmarks.startup import TINY_EVENTS, commands, prepare, run_cli, without_prefect_api

AWS_SDK = ("boto3", "botocore", "s3fs", "aiobotocore")
NO_PREFECT_LINE = "Running without Prefect (no PREFECT_API_URL); pass --prefect for a run record."
DAYS = ["--start", "2024-01-05", "--end", "2024-01-06"]  # the tiny trail's delivery days

COMMAND_NAMES = list(commands({k: Path(k) for k in ("empty", "trail", "table")}, Path("work")))
EXIT_OF = {"hunt": EXIT_PROBLEMS, "register (refuses a local table)": 1}
"""Statuses other than 0: the tiny trail has findings; Glue needs an s3:// table."""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty source, a tiny local trail (300 events, one day) and its table."""
    folder = tmp_path_factory.mktemp("startup")
    prepare(folder)
    assert list((folder / "table" / "events").rglob("*.parquet")), "the table was not written"
    return folder


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_no_command_imports_prefect_or_the_aws_sdk_for_local_folders(name, work):
    run = run_cli(commands(prepare(work), work)[name], without_prefect_api(work))
    assert run.exit == EXIT_OF.get(name, EXIT_OK), run.output
    assert run.imported("prefect", *AWS_SDK) == []
    assert run.imported("pydantic_settings") == []  # Settings is a stdlib dataclass
    # Every command collects cycles again once its imports are done (--help imports none).
    assert run.collecting or name == "--help"


def test_help_imports_no_data_library():
    run = run_cli(["--help"], without_prefect_api(Path("/nonexistent")))
    assert run.exit == EXIT_OK, run.output
    assert "Commands:" in run.output
    assert run.imported("polars", "pyarrow", "duckdb", "sqlglot", "plotly", "prefect") == []
    assert run.imported("typer", "rich") == []


def test_ingest_and_backfill_convert_without_prefect_and_say_so_in_one_line(work, tmp_path):
    trail = str(prepare(work)["trail"])
    written = []
    for args in (
        ["ingest", trail, str(tmp_path / "by-ingest"), "--lookback-days", "0"],
        ["backfill", trail, str(tmp_path / "by-backfill"), *DAYS],
    ):
        run = run_cli([*args, "--json"], without_prefect_api(tmp_path))
        assert run.exit == EXIT_OK, run.output
        assert run.stderr.count(NO_PREFECT_LINE) == 1
        written.append(json.loads(run.stdout.splitlines()[-1])["events_written"])
        assert run.imported("prefect", *AWS_SDK) == []
        # typer built a pydantic adapter per parameter (0.2 s), and Settings is a stdlib
        # dataclass: no pydantic. --json prints nothing for people, so no rich either.
        assert run.imported("typer", "pydantic", "rich") == []
        assert run.collecting  # off while the command imported, on again for its work
    assert written == [TINY_EVENTS, TINY_EVENTS]  # every event of the trail, either way


@pytest.mark.slow
def test_backfill_with_prefect_is_a_recorded_run_of_the_deployed_flow(
    prefect_harness, work, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    dest = str(tmp_path / "lake")
    trail = str(prepare(work)["trail"])
    result = CliRunner().invoke(app, ["backfill", trail, dest, *DAYS, "--prefect", "--json"])
    assert result.exit_code == EXIT_OK, result.output
    assert NO_PREFECT_LINE not in result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["units"], summary["units_failed"]) == (6, 0)  # 3 trail folders x 2 days
    assert summary["events_written"] == TINY_EVENTS
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["cloudtrail-backfill"]))
        )
    [run] = [r for r in runs if r.parameters.get("dest") == dest]
    assert run.state is not None and run.state.is_completed()
