"""How many workers convert an ingest run's batches, of which kind, and that they write
each event once.

The default is the cores the process may use when more than one batch is pending,
else 1; the runs here are real ``run_ingest`` calls in a child process pinned (CPU
affinity, as ``taskset`` sets it) to a chosen number of cores. Such a process runs one
thread when the run starts, as a command-line run does, so its workers are forked
processes (``flows.workers.fork_workers``); threads where a fork is not safe or not wanted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from flows.run import run_ingest
from flows.settings import Settings
from flows.workers import (
    BatchWorkers,
    batch_workers,
    cgroup_cpu_quota,
    cores_to_pin,
    quota_cpus,
    usable_cores,
    worker_core,
)
from tests.conftest import require
from tests.trail import ACCOUNT_A, ACCOUNT_B, Trail, assert_exactly_once, at

CHILD = """
import json, os, sys
from flows.run import run_ingest
from flows.workers import BatchWorkers

os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(sys.argv[3])])
pools = []
start = BatchWorkers.__init__
def recording(self, source, dest, settings, processes=None):
    pools.append(settings.workers)
    start(self, source, dest, settings, processes)
BatchWorkers.__init__ = recording
summary = run_ingest(sys.argv[1], sys.argv[2], lookback_days=0)
print(json.dumps({"pools": pools, "events": summary.events_written, "workers": summary.workers}))
"""


def trail_of(root, objects: int) -> Trail:
    trail = Trail(root=root)
    for n in range(objects):
        account = (ACCOUNT_A, ACCOUNT_B)[n % 2]
        trail.deliver(account, "us-east-1", at("2024-03-10", f"{n:02d}00"), events=3)
    return trail


def ingest_pinned(trail: Trail, table, cores: int, **env: str) -> dict:
    """``run_ingest`` with default settings (but ``env``) in a child pinned to ``cores``."""
    found = subprocess.run(
        [sys.executable, "-c", CHILD, trail.url, str(table), str(cores)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def test_usable_cores_are_the_processes_affinity_capped_by_its_cgroup_quota():
    quota = cgroup_cpu_quota()
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores() == (min(affinity, quota) if quota else affinity)


def cgroup_file(root, relative: str, name: str, text: str) -> None:
    folder = root / relative
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text + "\n")


def test_a_cgroup_v2_quota_caps_the_cores_at_its_whole_cpus(tmp_path):
    cgroup_file(tmp_path, "kubepods/pod1/ctr", "cpu.max", "250000 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/kubepods/pod1/ctr\n") == 2
    cgroup_file(tmp_path, "kubepods/pod1", "cpu.max", "100000 100000")  # a tighter parent
    assert cgroup_cpu_quota(tmp_path, "0::/kubepods/pod1/ctr\n") == 1


def test_a_container_sees_its_own_cgroup_at_the_root(tmp_path):
    cgroup_file(tmp_path, "", "cpu.max", "200000 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/\n") == 2


def test_no_quota_or_nothing_readable_leaves_the_affinity(tmp_path):
    cgroup_file(tmp_path, "ctr", "cpu.max", "max 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/ctr\n") is None
    assert cgroup_cpu_quota(tmp_path, "0::/elsewhere\n") is None
    assert cgroup_cpu_quota(tmp_path, "") is None


def test_a_cgroup_v1_quota_is_its_quota_over_its_period(tmp_path):
    membership = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
    cgroup_file(tmp_path, "cpu,cpuacct/docker/abc", "cpu.cfs_period_us", "100000")
    cgroup_file(tmp_path, "cpu,cpuacct/docker/abc", "cpu.cfs_quota_us", "-1")
    assert cgroup_cpu_quota(tmp_path, membership) is None
    cgroup_file(tmp_path, "cpu,cpuacct/docker/abc", "cpu.cfs_quota_us", "300000")
    assert cgroup_cpu_quota(tmp_path, membership) == 3


def test_part_of_a_core_is_no_room_for_another_worker():
    assert [quota_cpus(q) for q in ("50000", "150000", "200000", "max", "-1")] == [
        1, 1, 2, None, None,
    ]  # fmt: skip


def test_each_worker_gets_a_core_of_its_own_while_there_are_enough():
    assert [worker_core(i, 2, [4, 7]) for i in range(2)] == [4, 7]
    assert [worker_core(i, 2, [0, 1, 2]) for i in range(2)] == [0, 1]
    assert [worker_core(i, 3, [0, 1]) for i in range(3)] == [None, None, None]


def test_workers_are_pinned_only_to_cores_the_process_has_to_itself():
    assert cores_to_pin([2, 3], usable=2) == [2, 3]  # taskset, a cpuset
    assert cores_to_pin(list(range(64)), usable=2) == []  # a 2-CPU quota on a 64-core host
    assert [worker_core(i, 2, cores_to_pin(list(range(64)), 2)) for i in range(2)] == [
        None, None,
    ]  # fmt: skip


def test_the_setting_wins_else_one_thread_per_core_for_more_than_one_batch():
    assert batch_workers(Settings(workers=3), iter([])) == 3
    assert batch_workers(Settings(), iter([])) == 1
    assert batch_workers(Settings(), iter([["one batch"]])) == 1
    assert batch_workers(Settings(), iter([["one"], ["two"]])) == usable_cores()


def test_a_run_of_many_batches_uses_every_core_it_may(tmp_path):
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    trail = trail_of(tmp_path / "logs", 6)
    found = ingest_pinned(trail, tmp_path / "table", 2, CTPARQUET_BATCH_OBJECTS="1")
    assert found["pools"] == [2]
    assert found["workers"] == "2 processes"
    assert found["events"] == 18
    assert_exactly_once(str(tmp_path / "table"), trail.event_ids)


def test_one_core_or_one_batch_converts_in_the_calling_thread(tmp_path):
    trail = trail_of(tmp_path / "logs", 6)
    assert ingest_pinned(trail, tmp_path / "one-core", 1, CTPARQUET_BATCH_OBJECTS="1") == {
        "pools": [],
        "events": 18,
        "workers": "1 (this process)",
    }
    assert ingest_pinned(trail, tmp_path / "one-batch", 2) == {
        "pools": [],
        "events": 18,
        "workers": "1 (this process)",
    }
    assert_exactly_once(str(tmp_path / "one-batch"), trail.event_ids)


def test_the_workers_setting_overrides_the_cores(tmp_path):
    trail = trail_of(tmp_path / "logs", 4)
    found = ingest_pinned(
        trail, tmp_path / "table", 1, CTPARQUET_BATCH_OBJECTS="1", CTPARQUET_WORKERS="3"
    )
    assert found["pools"] == [3]
    assert found["workers"] == "3 processes"
    assert_exactly_once(str(tmp_path / "table"), trail.event_ids)


@pytest.mark.parametrize("threads", [2, 4])
def test_worker_threads_write_every_event_once_and_advance_every_day(
    tmp_path, monkeypatch, threads
):
    trail = trail_of(tmp_path / "logs", 8)
    seen: set[str] = set()
    convert = BatchWorkers._convert

    def watching(self: BatchWorkers, batch: list) -> object:
        seen.add(threading.current_thread().name)
        return convert(self, batch)

    monkeypatch.setattr(BatchWorkers, "_convert", watching)
    settings = Settings(batch_objects=1, lookback_days=0, workers=threads, worker_processes=False)
    summary = run_ingest(trail.url, str(tmp_path / "table"), settings=settings)
    assert summary.objects_converted == 8
    assert summary.workers == f"{threads} threads"
    assert len(seen) >= 2 and all(name.startswith("batch") for name in seen)
    assert_exactly_once(str(tmp_path / "table"), trail.event_ids)
    again = run_ingest(trail.url, str(tmp_path / "table"), settings=settings)
    assert again.objects_converted == 0  # every day's state advanced past its batches
