"""The command line follows the conventions people know from other tools, and starts at once.

Help reads ``SOURCE DEST`` with no value type on flags and names the environment
variables settings read; ``--version`` prints the package's version; without a
Prefect API the same code runs without Prefect (and says so in one line), with
``--prefect`` (or an API configured) it is a Prefect flow run with a record.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_OK, app, prefect_api_configured
from tests.trail import ACCOUNT_A, Trail, at

COMMANDS = ["ingest", "backfill", "compact", "redrive", "query", "ddl", "register"]
NO_PREFECT_LINE = "Running without Prefect (no PREFECT_API_URL); pass --prefect for a run record."


def help_of(*command: str) -> str:
    result = CliRunner().invoke(
        app, [*command, "--help"], terminal_width=100, prog_name="ctparquet"
    )
    assert result.exit_code == EXIT_OK, result.output
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_arguments_in_capitals_and_flags_without_a_value_type(command):
    text = help_of(command)
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: ctparquet {command} [OPTIONS] ")
    assert "{" not in usage and "}" not in usage, usage
    arguments = usage.split("[OPTIONS] ", 1)[1].split()
    assert arguments and all(a == a.upper() for a in arguments), usage
    assert "<bool>" not in text
    assert "--help  " in text or "--help\n" in text


def test_ingest_help_names_its_arguments_and_the_environment_variables():
    text = help_of("ingest")
    assert text.splitlines()[0] == "Usage: ctparquet ingest [OPTIONS] SOURCE DEST"
    flat = " ".join(text.split())  # help wraps lines
    for shown in (
        "--json End stdout",
        "--prefect / --no-prefect",
        "--lookback-days N",
        "[env var: CTPARQUET_LOOKBACK_DAYS;",
        "[env var: CTPARQUET_WORKERS;",
        "--profile NAME",
        "[env var: CTPARQUET_AWS_PROFILE]",
        "--region, --aws-region R",
        "[env var: CTPARQUET_AWS_REGION]",
    ):
        assert shown in flat, shown
    assert "[env var: CTPARQUET_DASK_ADDRESS]" in " ".join(help_of("backfill").split())
    assert "[env var: CTPARQUET_ATHENA_WORKGROUP]" in " ".join(help_of("register").split())


def test_version_prints_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == EXIT_OK
    assert result.stdout == f"ctparquet {version('cloudtrail-parquet')}\n"
    assert version("cloudtrail-parquet")[0].isdigit()


@pytest.fixture
def logs(tmp_path: Path) -> Trail:
    trail = Trail(root=tmp_path / "logs")
    trail.deliver(ACCOUNT_A, "us-east-1", at("2024-03-10", "0010"), events=3)
    return trail


def without_prefect_api(tmp_path: Path) -> dict[str, str]:
    """This environment with no Prefect API anywhere: no variable, an empty profile file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.pop("PREFECT_PROFILE", None)
    env.pop("PREFECT_PROFILES_PATH", None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def run_cli_program(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter; prints what it imported of Prefect as its last line."""
    program = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from flows.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "sys.stdout.write(result.output)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect')))\n"
        "sys.exit(result.exit_code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=False
    )


def test_ingest_without_a_prefect_api_runs_without_prefect_and_says_so(logs, tmp_path):
    dest = tmp_path / "lake"
    args = ["ingest", logs.url, str(dest), "--lookback-days", "0"]
    done = run_cli_program(args, without_prefect_api(tmp_path))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    *output, imported = done.stdout.strip().splitlines()
    assert NO_PREFECT_LINE in output
    assert json.loads(imported) == []  # not even the client: no server, no import time
    assert "Wrote 3 events" in "\n".join(output)


def test_compact_without_a_prefect_api_starts_no_prefect_server(logs, tmp_path):
    dest = tmp_path / "lake"
    from flows.run import run_ingest

    run_ingest(logs.url, str(dest), lookback_days=0)
    args = ["compact", str(dest), "--before", "2100-01-01", "--json"]
    done = run_cli_program(args, without_prefect_api(tmp_path))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    *output, imported = done.stdout.strip().splitlines()
    assert NO_PREFECT_LINE in output
    assert json.loads(output[-1])["partitions_compacted"] == 1
    assert not [m for m in json.loads(imported) if m.startswith("prefect.server")]


def test_an_explicit_no_prefect_says_nothing_about_it(logs, tmp_path):
    args = ["ingest", logs.url, str(tmp_path / "lake"), "--lookback-days", "0", "--no-prefect"]
    done = run_cli_program(args, without_prefect_api(tmp_path))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert NO_PREFECT_LINE not in done.stdout


def test_a_prefect_api_in_the_active_profile_counts_as_configured(tmp_path, monkeypatch):
    # As if Prefect were not loaded in this process (the CLI answers without importing it).
    monkeypatch.delitem(sys.modules, "prefect.settings", raising=False)
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "prefect-home"
    home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(home))
    assert not prefect_api_configured()  # no profiles file at all
    (home / "profiles.toml").write_text(
        'active = "server"\n\n'
        '[profiles.server]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n\n'
        "[profiles.ephemeral]\nPREFECT_SERVER_ANALYTICS_ENABLED = false\n"
    )
    assert prefect_api_configured()
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    assert not prefect_api_configured()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api_configured()


@pytest.mark.slow
def test_with_prefect_the_run_is_a_recorded_flow_run(prefect_harness, logs, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    dest = str(tmp_path / "lake")
    result = CliRunner().invoke(
        app, ["ingest", logs.url, dest, "--lookback-days", "0", "--prefect", "--json"]
    )
    assert result.exit_code == EXIT_OK, result.output
    assert NO_PREFECT_LINE not in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["events_written"] == 3
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["cloudtrail-ingest"]))
        )
    [run] = [r for r in runs if r.parameters.get("dest") == dest]
    assert run.state is not None and run.state.is_completed()


def test_query_cuts_long_values_with_a_mark_and_csv_keeps_them_whole(logs, tmp_path):
    from flows.run import run_ingest

    dest = str(tmp_path / "lake")
    run_ingest(logs.url, dest, lookback_days=0)
    sql = "SELECT requestparameters FROM cloudtrail_logs ORDER BY eventid LIMIT 1"
    whole = CliRunner().invoke(app, ["query", dest, sql, "--format", "csv"])
    assert whole.exit_code == EXIT_OK, whole.output
    value = next(csv.reader(io.StringIO(whole.stdout.splitlines()[1])))[0]
    assert len(value) > 12 and "…" not in value
    narrow = CliRunner().invoke(app, ["query", dest, sql, "--max-width", "12"])
    assert narrow.exit_code == EXIT_OK, narrow.output
    assert narrow.stdout.splitlines()[2] == value[:11] + "…"
    assert "1 values cut at 12 characters (…)" in narrow.stderr
    wide = CliRunner().invoke(app, ["query", dest, sql, "--max-width", "0"])
    assert wide.stdout.splitlines()[2] == value
