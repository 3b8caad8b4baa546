"""The ingest flow run for real by Prefect, and the CLI around it."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_FAILED, EXIT_OK, EXIT_PROBLEMS, app
from tests.helpers import read_table

KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/{day}/111122223333_CloudTrail_us-east-1_{name}.json.gz"  # noqa: E501


def write_log(root: Path, day: str, name: str, records: list[dict] | bytes) -> Path:
    path = root / KEY.format(day=day, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = records if isinstance(records, bytes) else json.dumps({"Records": records}).encode()
    path.write_bytes(gzip.compress(body))
    return path


def event(event_id: str, time: str, **extra) -> dict:
    return {"eventVersion": "1.09", "eventID": event_id, "eventTime": time,
            "awsRegion": "us-east-1", "eventName": "GetObject", **extra}  # fmt: skip


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "bucket"
    write_log(root, "2024/01/05", "a", [event("e1", "2024-01-05T10:00:00Z")])
    # Delivered the next day, logged just before midnight; e1 delivered a second time.
    write_log(
        root,
        "2024/01/06",
        "b",
        [
            event("e2", "2024-01-05T23:59:58Z", newField={"x": 1}),
            event("e1", "2024-01-05T10:00:00Z"),
        ],
    )
    write_log(root, "2024/01/06", "broken", b"this is not json")
    digest = root / "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/06/d.json.gz"
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b'{"digestStartTime":"2024-01-06T00:00:00Z"}'))
    return root


def test_the_flow_converts_records_state_and_skips_on_the_next_run(
    every_delivery_day, prefect_harness, logs, tmp_path
):
    from flows.ingest import ingest

    dest = tmp_path / "lake"
    first = ingest(str(logs), str(dest))
    assert first["objects_converted"] == 2
    assert first["events_written"] == 2
    assert first["duplicates_dropped"] == 1
    assert first["objects_skipped"] == {}  # digests are never listed: only CloudTrail/ folders
    assert [p["key"].endswith("broken.json.gz") for p in first["problems"]] == [True]
    table = read_table(dest / "events")
    assert sorted(table["eventid"]) == ["e1", "e2"]
    assert set(table["day"]) == {"05"}
    assert (dest / "events/region=us-east-1/year=2024/month=01/day=05").is_dir()

    second = ingest(str(logs), str(dest))
    assert second["objects_converted"] == 0
    assert second["days_complete"] == 2  # both delivery days are over and done (listed: empty)
    assert read_table(dest / "events").height == 2

    from prefect.artifacts import Artifact

    report = str(getattr(Artifact.get("cloudtrail-ingest-report"), "data", ""))
    assert "| Objects seen / converted | 0 / 0 |" in report
    assert "Requests to the logs (LIST / GET / other)" in report


def test_a_late_redelivery_in_a_later_run_does_not_duplicate(logs, tmp_path):
    from flows.ingest import run_ingest

    dest = tmp_path / "lake"
    run_ingest(str(logs), str(dest), lookback_days=0)
    write_log(
        logs,
        "2024/01/07",
        "late",
        [event("e2", "2024-01-05T23:59:58Z"), event("e3", "2024-01-06T00:00:01Z")],
    )
    later = run_ingest(str(logs), str(dest), lookback_days=0)
    assert later.events_written == 1
    assert later.duplicates_dropped == 1
    table = read_table(dest / "events")
    assert sorted(table["eventid"]) == ["e1", "e2", "e3"]


def test_losing_the_state_and_rerunning_keeps_each_event_once(logs, tmp_path):
    from flows.ingest import run_ingest

    dest = tmp_path / "lake"
    run_ingest(str(logs), str(dest), lookback_days=0)
    files = sorted((dest / "events").rglob("*.parquet"))
    shutil.rmtree(dest / "_state")  # as if the run had died after its data, before its state
    again = run_ingest(str(logs), str(dest), lookback_days=0)
    assert again.objects_converted == 2
    assert sorted((dest / "events").rglob("*.parquet")) == files  # rewritten in place
    assert sorted(read_table(dest / "events")["eventid"]) == ["e1", "e2"]


def test_cli_json_summary_is_the_last_stdout_line(every_delivery_day, logs, tmp_path):
    result = CliRunner().invoke(
        app, ["ingest", str(logs), str(tmp_path / "lake"), "--json", "--no-prefect"]
    )
    assert result.exit_code == EXIT_PROBLEMS, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["objects_converted"] == 2
    assert summary["events_written"] == 2
    assert summary["objects_skipped"] == {}
    assert summary["days_listed"] == 2
    assert summary["problems"][0]["reason"].startswith("not valid JSON")
    assert summary["events_table"] == str(tmp_path / "lake" / "events")


def test_cli_workers_option_converts_on_that_many_workers(
    every_delivery_day, logs, tmp_path, monkeypatch
):
    from flows.workers import BatchWorkers

    monkeypatch.setenv("CTPARQUET_WORKERS", "1")  # restored after the CLI sets it
    (logs / KEY.format(day="2024/01/06", name="broken")).unlink()
    pools: list[int] = []
    start_pool = BatchWorkers.__init__

    def recording(
        self: BatchWorkers, source: Any, dest: Any, settings: Any, processes: Any = None
    ) -> None:
        pools.append(settings.workers)
        start_pool(self, source, dest, settings, processes)

    monkeypatch.setattr(BatchWorkers, "__init__", recording)
    result = CliRunner().invoke(
        app, ["ingest", str(logs), str(tmp_path / "lake"), "--no-prefect", "--workers", "2"]
    )
    assert result.exit_code == EXIT_OK, result.output
    assert pools == [2]
    # Processes when this test process runs one thread when the run starts, else threads.
    assert re.search(r"workers: 2 (processes|threads)\)", result.stdout), result.stdout
    assert sorted(read_table(tmp_path / "lake" / "events")["eventid"]) == ["e1", "e2"]


def test_cli_human_summary_and_exit_status(every_delivery_day, logs, tmp_path):
    (logs / KEY.format(day="2024/01/06", name="broken")).unlink()
    result = CliRunner().invoke(app, ["ingest", str(logs), str(tmp_path / "lake"), "--no-prefect"])
    assert result.exit_code == EXIT_OK, result.output
    assert "Wrote 2 events" in result.stdout
    assert "2 day folders listed" in result.stdout


def test_cli_refuses_a_destination_inside_the_source(logs):
    result = CliRunner().invoke(
        app, ["ingest", str(logs), str(logs / "lake"), "--json", "--no-prefect"]
    )
    assert result.exit_code == EXIT_FAILED
    assert "inside the source" in json.loads(result.stdout.strip().splitlines()[-1])["error"]


def test_ingest_without_prefect_imports_no_prefect(every_delivery_day, logs, tmp_path):
    # Prefect costs ~0.8 s and ~100 MB per process: --no-prefect skips it.
    args = ["ingest", str(logs), str(tmp_path / "lake"), "--no-prefect", "--workers", "2"]
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from flows.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert 'prefect' not in sys.modules, 'ingest --no-prefect imported Prefect'\n"
        "sys.exit(result.exit_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == EXIT_PROBLEMS, result.stderr  # the fixture's broken object
    assert sorted(read_table(tmp_path / "lake" / "events")["eventid"]) == ["e1", "e2"]
