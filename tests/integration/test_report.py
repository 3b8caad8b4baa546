"""`ctparquet report`: one self-contained page, rendered in Debian's headless Chromium with no
network, with no console errors and charts drawn from the table's data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import EXIT_OK, app
from flows.report_html import charts, summarise
from flows.run import run_ingest
from tests.compat import raw_records
from tests.conftest import require

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
)


@pytest.fixture(scope="module")
def lake(shared_data, tmp_path_factory) -> str:
    dest = tmp_path_factory.mktemp("report") / "lake"
    logs = shared_data / "invictus-ir" / "AWSLogs"
    assert run_ingest(str(logs), str(dest), lookback_days=0).problems == []
    return str(dest)


@pytest.fixture(scope="module")
def page(lake, tmp_path_factory) -> Path:
    out: Path = tmp_path_factory.mktemp("page") / "report.html"
    result = CliRunner().invoke(app, ["report", lake, "--out", str(out), "--json"])
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["out"], summary["events"]) == (str(out), 2900)
    return out


def chromium(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the browser's console lines."""
    require(
        shutil.which("chromium") is not None,
        "Debian's chromium is not installed (apt-get install chromium)",
    )
    done = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    console = [line for line in lines if ":CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


def test_the_page_is_self_contained(page):
    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", text)
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js is inlined, once
    assert text.count("window.PlotlyConfig") == 1
    assert text.count("Plotly.newPlot") == 7


def test_the_charts_hold_the_tables_figures(lake, shared_data):
    records = raw_records(shared_data / "invictus-ir" / "AWSLogs")
    summary = summarise(lake)
    figures = dict(charts(summary))
    per_region = figures["Events per day by region"]
    assert sum(sum(trace.y) for trace in per_region.data) == summary.events == len(records)
    names = figures["Top event names"].data[0]
    [(busiest, calls)] = Counter(r["eventName"] for r in records).most_common(1)
    assert (list(names.y)[-1], list(names.x)[-1]) == (busiest, calls)  # drawn on top
    errors = figures["Error codes over time"]
    assert {trace.name for trace in errors.data} >= {"AccessDenied", "ThrottlingException"}
    assert [r["value"] for r in summary.new_regions] == ["us-east-1"]


def test_the_page_renders_in_chromium_with_data_and_no_console_errors(page, tmp_path):
    dom, console = chromium(page, tmp_path)
    assert console == []
    charts_drawn = re.split(r'id="chart-\d+"', dom)[1:]
    assert len(charts_drawn) == 7
    for drawn in charts_drawn:
        chart = drawn.split('<section class="chart">', 1)[0]
        assert 'class="main-svg"' in chart  # plotly ran and drew
        assert chart.count('class="point"') > 0  # with bars from the data
    assert 'id="hunt-flow_logs_deleted"' in dom
    assert "fl-064ed3a785e4a37ef" in dom  # a finding's rows, on the page


def test_the_console_check_sees_errors(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('x'); nosuch();</script></body></html>")
    _, console = chromium(broken, tmp_path)
    assert any("Uncaught ReferenceError" in line for line in console)
