"""``python -m tests.corpus``: every option described, and a start date."""

from __future__ import annotations

import subprocess
import sys

from tests.corpus import _main


def test_help_describes_every_option():
    done = subprocess.run(
        [sys.executable, "-m", "tests.corpus", "--help"], capture_output=True, text=True, check=True
    )
    flat = " ".join(done.stdout.split())
    for described in (
        "ROOT Folder to write AWSLogs/ into.",
        "--events N Distinct API events",
        "--seed N Random seed",
        "--start YYYY-MM-DD First event day (UTC). Default: 2024-01-05.",
        "--days N Days the events spread over",
    ):
        assert described in flat, described


def test_start_sets_the_first_delivery_day(tmp_path, capsys):
    _main([str(tmp_path), "--events", "50", "--start", "2025-06-01", "--days", "1"])
    assert "50 events in" in capsys.readouterr().out
    # AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME: the delivery days.
    folders = {p.parent.relative_to(tmp_path).parts for p in tmp_path.rglob("*.json.gz")}
    delivered = {"/".join(f[-3:]) for f in folders if f[-5] == "CloudTrail"}
    assert "2025/06/01" in delivered
    assert delivered <= {"2025/06/01", "2025/06/02"}, delivered  # late ones: the next day
