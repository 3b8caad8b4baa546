"""What a killed local run leaves behind (staging files, mutexes) is cleaned up by the next
one once older than a lease, and never while a live run may still use it."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from flows.run import open_storages
from flows.settings import Settings
from flows.storage import Storage, remove_local_leftovers

TTL = 120.0


def aged(path: Path, seconds: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def leftovers(dest: Path) -> dict[str, Path]:
    lock = dest / "_state/locks/events/region=us-east-1/year=2024/month=01/day=05/lock.json"
    day = dest / "_state/days/trail/AWSLogs/1/CloudTrail/us-east-1/2024/01/05.json"
    return {
        "staging_old": aged(dest / "_staging/0f.tmp", TTL * 2),
        "staging_new": aged(dest / "_staging/1f.tmp", 1),
        "cas_old": aged(Path(f"{day}.3a.tmp"), TTL * 2),
        "mutex_old": aged(Path(f"{lock}.mutex"), TTL * 2, b""),
        "mutex_new": aged(Path(f"{day}.mutex"), 1, b""),
        "state": aged(day, TTL * 10, b"{}"),
        "table": aged(
            dest / "events/region=us-east-1/year=2024/month=01/day=05/p.parquet", TTL * 10
        ),
    }


def test_only_leftovers_older_than_a_lease_are_removed(tmp_path):
    files = leftovers(tmp_path)
    removed = remove_local_leftovers(
        Storage(str(tmp_path), settings=Settings(lock_ttl_seconds=TTL))
    )
    gone = {name for name, path in files.items() if not path.exists()}
    assert gone == {"staging_old", "cas_old", "mutex_old"}
    assert sorted(removed) == sorted(str(files[name]) for name in gone)


def test_the_next_run_cleans_up(tmp_path):
    files = leftovers(tmp_path / "lake")
    (tmp_path / "logs/AWSLogs").mkdir(parents=True)
    open_storages(
        str(tmp_path / "logs/AWSLogs"), str(tmp_path / "lake"), Settings(lock_ttl_seconds=TTL)
    )
    assert not files["staging_old"].exists() and not files["mutex_old"].exists()
    assert files["staging_new"].exists() and files["table"].exists()


def test_a_mutex_held_by_a_live_process_stays(tmp_path):
    mutex = aged(tmp_path / "_state/x.json.mutex", TTL * 2, b"")
    with open(mutex, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert remove_local_leftovers(Storage(str(tmp_path))) == []
    assert mutex.exists()


def test_a_writer_waiting_on_a_removed_mutex_locks_the_new_one(tmp_path):
    """Removal and a compare-and-swap racing: the writer never holds a mutex nobody else sees."""
    storage = Storage(str(tmp_path), settings=Settings(lock_ttl_seconds=TTL))
    target = tmp_path / "_state/x.json"
    version = storage.create_exclusive(str(target), b"0")
    assert version is not None
    mutex = aged(Path(f"{target}.mutex"), TTL * 2, b"")
    result: list[str | None] = []
    writer = threading.Thread(
        target=lambda: result.append(storage.replace_if(str(target), b"1", version))
    )
    with open(mutex, "rb") as cleaner:  # the clean-up holds it, about to remove it
        fcntl.flock(cleaner, fcntl.LOCK_EX)
        writer.start()
        time.sleep(0.2)  # the writer now waits on the old mutex
        os.unlink(mutex)
    writer.join(5)
    assert result and result[0] is not None and target.read_bytes() == b"1"
    assert Path(f"{target}.mutex").exists(), "the writer locked a mutex that is there"
    assert os.stat(f"{target}.mutex").st_mtime > time.time() - 60  # marked as in use
