"""A run SIGKILLed while writing leaves no partial Parquet file in the table; a rerun completes it.

The real CLI runs in a subprocess (``tests/kill_driver.py``) that freezes at a
chosen write: half way through writing a file, or just after moving one into
place (data in, state not yet). The test kills it there with SIGKILL, checks
that every Parquet file under the table is whole, reruns, and checks every good
event is in the table exactly once and every broken object is quarantined.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.ingest import run_ingest
from flows.redriving import run_redrive
from tests.helpers import read_table
from tests.hostile import build_hostile_corpus, encoded, event

ROOT = Path(__file__).parents[2]


def run_until_frozen(arguments: list[str], kill_at: str, marker: Path) -> str:
    """Start the CLI, wait until it freezes at ``kill_at``, SIGKILL it; the path it froze on."""
    env = {
        **os.environ,
        "KILL_AT": kill_at,
        "KILL_MARKER": str(marker),
        "CTPARQUET_BATCH_OBJECTS": "4",
        "CTPARQUET_LOCK_TTL_SECONDS": "2",  # the killed run's lease is taken over soon
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "tests.kill_driver", *arguments]
    process = subprocess.Popen(
        [*command, "--no-prefect", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the run ended before {kill_at}: {out.decode()} {err.decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run never reached {kill_at}")
            time.sleep(0.05)
        while not marker.read_text():
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
    return marker.read_text()


@pytest.mark.parametrize(
    "kill_at",
    [
        "pipe:1",  # half way through the first Parquet file
        "mv:6",  # after some batches: data moved in, state not yet written
        "pipe:9",  # half way through a later file (a quarantine or state record)
    ],
)
def test_a_run_killed_while_writing_leaves_no_partial_file_and_a_rerun_completes(
    every_delivery_day, tmp_path, kill_at
):
    corpus = build_hostile_corpus(tmp_path / "trail")
    dest = tmp_path / "lake"
    arguments = ["ingest", str(corpus.root), str(dest)]
    frozen_on = Path(run_until_frozen(arguments, kill_at, tmp_path / "marker"))

    if kill_at.startswith("pipe"):
        assert frozen_on.is_relative_to(dest / "_staging"), "writes are staged beside the table"
        assert frozen_on.exists(), "the killed run left its half-written file in staging"
    for file in (dest / "events").rglob("*"):
        if file.is_file():
            assert file.suffix == ".parquet", f"a stray file in the table: {file}"
            pq.read_metadata(file)  # whole: a partial file has no footer

    rerun = run_ingest(str(corpus.root), str(dest), lookback_days=0)
    assert rerun.objects_converted > 0
    assert Counter(read_table(dest / "events")["eventid"].to_list()) == Counter(corpus.good)
    quarantined = {
        line.split('"url":"', 1)[1].split('"', 1)[0]
        for file in (dest / "_quarantine").glob("*.jsonl")
        for line in file.read_text().splitlines()
    }
    assert quarantined == {str(corpus.objects[e.name]) for e in corpus.problems}


def test_a_redrive_killed_after_its_data_and_rerun_converts_each_record_once(tmp_path):
    corpus = build_hostile_corpus(tmp_path / "trail")
    dest = tmp_path / "lake"
    run_ingest(str(corpus.root), str(dest), lookback_days=0)
    # The fix: a broken object re-uploaded whole with the same size (only a re-drive sees it).
    fixed = corpus.objects["records-not-list"]
    body = gzip.compress(encoded([event("fixed1"), event("fixed2")]))
    fixed.write_bytes(body + b"\0" * (fixed.stat().st_size - len(body)))

    frozen_on = run_until_frozen(["redrive", str(dest)], "mv:1", tmp_path / "marker")
    assert frozen_on.endswith(".parquet"), "killed after the data, before the quarantine"
    assert str(fixed) in "".join(f.read_text() for f in (dest / "_quarantine").glob("*.jsonl"))

    rerun = run_redrive(str(dest))
    assert rerun.outcome.objects_cleared == 1
    expected = Counter([*corpus.good, "fixed1", "fixed2"])
    assert Counter(read_table(dest / "events")["eventid"].to_list()) == expected
