"""Compaction on a real table: few large files, same rows, each eventID once, idempotent."""

from __future__ import annotations

import itertools
import shutil
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.compaction import run_compact
from flows.ingest import run_ingest
from flows.settings import Settings
from tests.corpus import generate_corpus
from tests.helpers import read_table
from transforms.parquet import COMPACTED_PREFIX


@pytest.fixture
def small_files_table(tmp_path) -> Path:
    corpus = generate_corpus(
        tmp_path / "logs", seed=99, events=2500, days=3, regions=("us-east-1",)
    )
    settings = Settings(batch_bytes=32 * 1024, batch_objects=3)
    run_ingest(
        str(corpus.root / "AWSLogs"), str(tmp_path / "lake"), settings=settings, lookback_days=0
    )
    lake: Path = tmp_path / "lake"
    return lake


def files_by_partition(events: Path) -> dict[Path, list[Path]]:
    found: dict[Path, list[Path]] = {}
    for file in sorted(events.rglob("*.parquet")):
        found.setdefault(file.parent, []).append(file)
    return found


def test_closed_days_become_one_sorted_file_with_each_event_once(small_files_table):
    events = small_files_table / "events"
    before_rows = read_table(events)
    # A redelivered copy sitting in a second file: compaction must drop it.
    some_file = next(iter(files_by_partition(events).values()))[0]
    shutil.copy(some_file, some_file.with_name("part-copy.parquet"))
    copied_rows = pq.read_metadata(some_file).num_rows

    summary = run_compact(str(small_files_table), before=date(2100, 1, 1))
    after = files_by_partition(events)
    insights = files_by_partition(small_files_table / "insights")  # compacted alike
    assert summary.partitions_by_table == {"events": len(after), "insights": len(insights)}
    assert len(after) >= 3
    assert summary.files_before > summary.files_after == len(after) + len(insights)
    assert summary.duplicates_dropped == copied_rows
    for files in after.values():
        [file] = files  # small partitions become one file
        assert file.name.startswith(COMPACTED_PREFIX)
        times = pq.read_table(file, columns=["eventtimestamp"]).column(0).to_pylist()
        assert times == sorted(times)
    after_rows = read_table(events)
    assert after_rows["eventid"].n_unique() == after_rows.height
    order = ["region", "year", "month", "day", "eventid"]
    assert after_rows.sort(order).equals(before_rows.sort(order))


def test_a_large_partition_becomes_files_of_the_target_size_with_disjoint_times(tmp_path):
    corpus = generate_corpus(
        tmp_path / "logs", seed=5, events=40_000, days=1, regions=("us-east-1",)
    )
    settings = Settings(batch_bytes=256 * 1024)
    run_ingest(
        str(corpus.root / "AWSLogs"), str(tmp_path / "lake"), settings=settings, lookback_days=0
    )
    events = tmp_path / "lake" / "events"
    folder, small = max(files_by_partition(events).items(), key=lambda kv: len(kv[1]))
    total = sum(f.stat().st_size for f in small)
    assert total > 3 * 1024 * 1024, "the partition must exceed the target several times"

    run_compact(str(tmp_path / "lake"), before=date(2100, 1, 1), target_mb=1)
    files = files_by_partition(events)[folder]
    sizes = [f.stat().st_size for f in files]
    assert abs(len(files) - total / (1024 * 1024)) <= 1.5
    assert all(size > 0.6 * 1024 * 1024 for size in sizes[:-1])
    ranges = []
    for file in files:
        times = pq.read_table(file, columns=["eventtimestamp"]).column(0).to_pylist()
        assert times == sorted(times)
        ranges.append((times[0], times[-1]))
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))


def test_a_rerun_changes_nothing_and_open_days_are_left_alone(small_files_table):
    events = small_files_table / "events"
    days = sorted({p.parent.name for p in events.rglob("*.parquet")})
    last_day = max(files_by_partition(events))
    cutoff = date(*(int(p.split("=")[1]) for p in last_day.parts[-3:]))
    first = run_compact(str(small_files_table), before=cutoff)
    assert first.partitions_skipped["open_day"] >= 1
    assert all(
        not f.name.startswith(COMPACTED_PREFIX) for f in files_by_partition(events)[last_day]
    )
    snapshot = {f: f.read_bytes() for f in events.rglob("*.parquet")}
    second = run_compact(str(small_files_table), before=cutoff)
    assert second.partitions_compacted == 0
    assert second.partitions_skipped["already_compacted"] == first.partitions_compacted
    assert {f: f.read_bytes() for f in events.rglob("*.parquet")} == snapshot
    assert days


def test_cli_compact_json(small_files_table):
    import json

    from click.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(
        app, ["compact", str(small_files_table), "--before", "2100-01-01", "--json", "--no-prefect"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["partitions_compacted"] >= 3
    assert summary["files_after"] < summary["files_before"]
    bad = CliRunner().invoke(
        app, ["compact", str(small_files_table), "--target-mb", "9999", "--json", "--no-prefect"]
    )
    assert bad.exit_code == 1
    assert "outside" in json.loads(bad.stdout.strip().splitlines()[-1])["error"]
