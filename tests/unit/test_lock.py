"""Leases on a local folder (the same conditional-write semantics as on S3)."""

from __future__ import annotations

import pytest

from flows.lock import LeaseLostError, LockTimeoutError, acquire
from flows.storage import Storage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store(tmp_path):
    return Storage(str(tmp_path))


def test_a_held_lease_blocks_others_until_it_expires_then_is_taken_over(store):
    clock = Clock()
    path = store.path("_state/locks/x.json")
    first = acquire(store, path, ttl=10, wait=1, owner="first", clock=clock, sleep=clock.sleep)
    with pytest.raises(LockTimeoutError, match="lock held by first"):
        acquire(store, path, ttl=10, wait=5, owner="second", clock=clock, sleep=clock.sleep)
    clock.now += 10  # first's lease runs out (it was killed)
    second = acquire(store, path, ttl=10, wait=1, owner="second", clock=clock, sleep=clock.sleep)
    with pytest.raises(LeaseLostError):
        first.renew()  # its version was replaced by the take-over
    first.release()  # a late release must not free second's lease
    with pytest.raises(LockTimeoutError, match="lock held by second"):
        acquire(store, path, ttl=10, wait=1, owner="third", clock=clock, sleep=clock.sleep)
    second.release()
    third = acquire(store, path, ttl=10, wait=0, owner="third", clock=clock, sleep=clock.sleep)
    assert third.owner == "third"


def test_a_lease_near_its_end_refuses_to_write_on(store):
    clock = Clock()
    lease = acquire(store, store.path("l.json"), ttl=8, wait=0, clock=clock, sleep=clock.sleep)
    lease.check()
    clock.now += 7
    with pytest.raises(LeaseLostError, match="ran out"):
        lease.check()


def test_conditional_writes_on_a_local_folder(store):
    path = store.path("a/b.json")
    version = store.create_exclusive(path, b"1")
    assert version is not None
    assert store.create_exclusive(path, b"2") is None
    assert store.replace_if(path, b"3", "stale") is None
    assert store.replace_if(path, b"3", version) is not None
    assert store.read(path) == b"3"


def test_a_slow_writer_renews_its_lease_unless_it_was_taken_over(store):
    clock = Clock()
    path = store.path("l.json")
    lease = acquire(store, path, ttl=8, wait=0, owner="slow", clock=clock, sleep=clock.sleep)
    clock.now += 5
    lease.keep()  # renewed: 8 s from now
    assert lease.deadline == clock.now + 8
    clock.now += 9  # frozen past its expiry; another run takes over
    acquire(store, path, ttl=8, wait=0, owner="other", clock=clock, sleep=clock.sleep)
    with pytest.raises(LeaseLostError, match="taken over"):
        lease.keep()
