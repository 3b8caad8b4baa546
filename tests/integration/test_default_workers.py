"""By default a run uses the cores it may use, but only when there is more than one batch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flows.run import run_ingest
from flows.settings import Settings
from flows.workers import BatchWorkers
from tests.corpus import generate_corpus
from tests.helpers import read_table


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker count of every pool a run starts."""
    started: list[int] = []
    start_pool = BatchWorkers.__init__

    def recording(self: BatchWorkers, source: Any, dest: Any, settings: Settings) -> None:
        started.append(settings.workers or 1)
        start_pool(self, source, dest, settings)

    monkeypatch.setattr(BatchWorkers, "__init__", recording)
    monkeypatch.delenv("CTPARQUET_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # two usable cores
    return started


def test_many_batches_get_a_worker_per_usable_core(tmp_path: Path, pools: list[int]):
    corpus = generate_corpus(tmp_path / "logs", seed=4, events=600, events_per_object=50)
    settings = Settings(batch_objects=3)  # several batches
    summary = run_ingest(
        str(tmp_path / "logs" / "AWSLogs"), str(tmp_path / "lake"), settings=settings,
        lookback_days=0,
    )  # fmt: skip
    assert pools == [2]
    assert summary.events_written == len(corpus.events)
    assert read_table(tmp_path / "lake" / "events").height == len(corpus.events)


def test_one_batch_is_converted_in_the_process_itself(tmp_path: Path, pools: list[int]):
    generate_corpus(tmp_path / "logs", seed=4, events=100, events_per_object=50)
    summary = run_ingest(
        str(tmp_path / "logs" / "AWSLogs"), str(tmp_path / "lake"), lookback_days=0
    )
    assert pools == []
    assert summary.events_written > 0


def test_workers_asked_for_are_what_a_run_gets(tmp_path: Path, pools: list[int]):
    generate_corpus(tmp_path / "logs", seed=4, events=100, events_per_object=50)
    run_ingest(
        str(tmp_path / "logs" / "AWSLogs"), str(tmp_path / "lake"),
        settings=Settings(workers=1, batch_objects=1), lookback_days=0,
    )  # fmt: skip
    assert pools == []
