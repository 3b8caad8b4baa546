"""Ingest's forked worker processes: the same table as threads, forked only where safe,
a worker's death named and recovered from, and no worker outliving its run.

Each run is a real ``run_ingest`` in a child process, as a command-line run is: one
thread when it starts, so ``fork_workers`` forks. Patches a child makes before the run
reach its workers, because they are forked from it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from flows.run import run_ingest
from flows.workers import _portable
from tests.conftest import require
from tests.helpers import read_table
from tests.trail import ACCOUNT_A, ACCOUNT_B, Trail, assert_exactly_once, at
from transforms.errors import PipelineError


def trail_of(root: Path, objects: int, events: int = 20) -> Trail:
    trail = Trail(root=root)
    for n in range(objects):
        account = (ACCOUNT_A, ACCOUNT_B)[n % 2]
        region = ("us-east-1", "eu-west-1")[n % 3 % 2]
        trail.deliver(account, region, at("2024-03-10", f"{n % 24:02d}{n % 60:02d}"), events=events)
    return trail


def run_child(script: str, *arguments: str, **env: str) -> dict:
    """Run ``script`` in a fresh interpreter pinned to two cores; its last line, as JSON."""
    found = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    result: dict = json.loads(found.stdout.strip().splitlines()[-1])
    return result


INGEST = """
import json, os, sys
from flows.run import run_ingest
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
summary = run_ingest(sys.argv[1], sys.argv[2], lookback_days=0)
print(json.dumps({"workers": summary.workers, "events": summary.events_written,
                  "requests": summary.as_json()["requests"]}))
"""


def sorted_rows(table: Path) -> pl.DataFrame:
    return read_table(table / "events").sort("eventid")


def test_processes_write_the_table_threads_write(tmp_path):
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    trail = trail_of(tmp_path / "logs", 12)
    by_processes = run_child(INGEST, trail.url, str(tmp_path / "p"), CTPARQUET_BATCH_OBJECTS="2")
    by_threads = run_child(
        INGEST,
        trail.url,
        str(tmp_path / "t"),
        CTPARQUET_BATCH_OBJECTS="2",
        CTPARQUET_WORKER_PROCESSES="false",
    )
    assert by_processes["workers"] == "2 processes"
    assert by_threads["workers"] == "2 threads"
    assert by_processes["events"] == by_threads["events"] == len(trail.event_ids)
    assert_exactly_once(str(tmp_path / "p"), trail.event_ids)
    assert sorted_rows(tmp_path / "p").equals(sorted_rows(tmp_path / "t"))


def test_processes_convert_from_and_into_s3_and_the_run_counts_their_requests(s3):
    """Each worker makes its own S3 clients (s3fs, boto3) after the fork; what they ask of
    S3 is in the run's summary, as a thread's requests are."""
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    client = s3.client()
    client.create_bucket(Bucket="trail")
    client.create_bucket(Bucket="lake")
    trail = Trail(client=client)
    for n in range(8):
        trail.deliver((ACCOUNT_A, ACCOUNT_B)[n % 2], "us-east-1", at("2024-03-10", f"{n:02d}10"))
    found = run_child(INGEST, trail.url, "s3://lake/ct/", CTPARQUET_BATCH_OBJECTS="1")
    assert found["workers"] == "2 processes"
    assert_exactly_once("s3://lake/ct/", trail.event_ids)
    source, table = found["requests"]["source"], found["requests"]["table"]
    assert source["by_operation"]["GetObject"] == 8  # each object read once, by some worker
    assert table["by_operation"]["PutObject"] >= 8  # each batch's file, index and state


FORK_CHECK = """
import json, threading, polars as pl
from flows.settings import Settings
from flows.workers import fork_workers

found = {}
pool = fork_workers(Settings(workers=2))
found["alone"] = pool is not None
if pool:
    found["ran"] = pool.submit(sum, [1, 2]).result()
    pool.shutdown()
found["not_wanted"] = fork_workers(Settings(workers=2, worker_processes=False)) is not None
found["one_worker"] = fork_workers(Settings(workers=1)) is not None
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
found["beside_a_thread"] = fork_workers(Settings(workers=2)) is not None
stop.set()
other.join()
pl.DataFrame({"a": [3, 1, 2]}).sort("a")  # starts Polars' thread pool
found["after_polars_pool"] = fork_workers(Settings(workers=2)) is not None
print(json.dumps(found))
"""


def test_workers_are_forked_only_from_a_process_running_one_thread():
    assert run_child(FORK_CHECK) == {
        "alone": True,
        "ran": 3,
        "not_wanted": False,
        "one_worker": False,
        "beside_a_thread": False,
        "after_polars_pool": False,
    }


PINNED_WORKERS = """
import json, os, sys, time
from flows.settings import Settings
from flows.workers import fork_workers

def where_i_run(_):
    time.sleep(0.2)  # long enough that every worker takes a task
    return os.getpid(), sorted(os.sched_getaffinity(0))

os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
pool = fork_workers(Settings(workers=int(sys.argv[1])))
seen = dict(pool.map(where_i_run, range(8)))
pool.shutdown()
print(json.dumps({"run": sorted(os.sched_getaffinity(0)), "workers": sorted(seen.values())}))
"""


def test_each_forked_worker_runs_on_a_core_of_its_own():
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    found = run_child(PINNED_WORKERS, "2")
    assert len(found["run"]) == 2  # the run itself stays free to use both
    assert found["workers"] == [[core] for core in found["run"]]


def test_more_workers_than_cores_are_left_to_run_anywhere():
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    found = run_child(PINNED_WORKERS, "3")
    assert len(found["workers"]) == 3
    assert all(cores == found["run"] for cores in found["workers"])


KILLED_WORKER = """
import json, os, signal, sys
import flows.workers
from flows.run import run_ingest
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
run = os.getpid()
convert = flows.workers.convert_batch
def dying(source, dest, batch, **kwargs):
    if os.getpid() != run and any(item.url.endswith(sys.argv[3]) for item in batch):
        os.kill(os.getpid(), signal.SIGKILL)  # before its leases: as the OOM killer might
    return convert(source, dest, batch, **kwargs)
flows.workers.convert_batch = dying
try:
    run_ingest(sys.argv[1], sys.argv[2], lookback_days=0)
except Exception as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def test_a_worker_killed_mid_run_fails_the_run_by_name_and_the_next_run_completes(tmp_path):
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    trail = trail_of(tmp_path / "logs", 10)
    victim = sorted(trail.keys)[5]
    table = tmp_path / "table"
    found = run_child(
        KILLED_WORKER, trail.url, str(table), Path(victim).name, CTPARQUET_BATCH_OBJECTS="1"
    )
    assert found["error"] == "WorkerDiedError"
    assert "a worker process ended" in found["message"]
    assert "converted again by the next run" in found["message"]

    rerun = run_ingest(trail.url, str(table), lookback_days=0)
    assert rerun.objects_converted >= 1
    assert_exactly_once(str(table), trail.event_ids)


STUCK_WORKERS = """
import os, sys, time
import flows.workers
from flows.run import run_ingest
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
def stuck(source, dest, batch, **kwargs):
    open(os.path.join(sys.argv[3], str(os.getpid())), "w").close()
    time.sleep(120)
flows.workers.convert_batch = stuck
run_ingest(sys.argv[1], sys.argv[2], lookback_days=0)
"""


def test_no_worker_outlives_a_run_killed_with_sigkill(tmp_path):
    require(len(os.sched_getaffinity(0)) >= 2, "two usable cores")
    trail = trail_of(tmp_path / "logs", 6, events=2)
    marks = tmp_path / "workers"
    marks.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-c", STUCK_WORKERS, trail.url, str(tmp_path / "t"), str(marks)],
        env={**os.environ, "CTPARQUET_BATCH_OBJECTS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 2:
            assert run.poll() is None, "the run ended before its workers took a batch each"
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        workers = [int(mark.name) for mark in marks.iterdir()]
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)], "a worker outlived its run"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


class NeedsAKeywordError(Exception):
    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


def test_an_error_that_cannot_travel_back_is_sent_as_words():
    kept = PipelineError("lock held by another run", key="s3://bucket/lock.json")
    assert _portable(kept) is kept
    sent = _portable(NeedsAKeywordError("the disk is full", where="/tmp"))
    assert type(sent) is PipelineError
    assert str(sent) == "NeedsAKeywordError: the disk is full"


@pytest.mark.parametrize("error", [ValueError("bad value"), OSError(28, "No space left")])
def test_ordinary_errors_travel_back_as_they_are(error):
    assert _portable(error) is error
