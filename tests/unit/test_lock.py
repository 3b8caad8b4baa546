"""Leases on a local folder (the same conditional-write semantics as on S3)."""

from __future__ import annotations

import pytest

from flows.lock import LeaseLostError, LeaseTooShortError, LockTimeoutError, acquire
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


def test_a_lease_too_short_for_a_puts_retries_is_refused_before_it_is_taken(store):
    clock = Clock()
    path = store.path("l.json")
    # 10 attempts: botocore may sleep 111 s in all; a quarter of the lease is the margin.
    with pytest.raises(LeaseTooShortError, match="CTPARQUET_LOCK_TTL_SECONDS above 148"):
        acquire(store, path, ttl=120, wait=0, budget=111, clock=clock, sleep=clock.sleep)
    assert not store.exists(path), "no lease object was written"


def test_a_lease_with_less_left_than_a_puts_retries_is_renewed_before_the_put(store):
    clock = Clock()
    lease = acquire(
        store, store.path("l.json"), ttl=300, wait=0, budget=111, clock=clock, sleep=clock.sleep
    )
    clock.now += 120  # 180 s left: more than half the lease, less than 111 s + 75 s
    lease.keep()
    assert lease.deadline == clock.now + 300


def test_a_lease_cut_short_is_refused_before_the_put(store):
    clock = Clock()
    lease = acquire(
        store, store.path("l.json"), ttl=300, wait=0, budget=111, clock=clock, sleep=clock.sleep
    )
    lease.ttl = 100  # as a lease taken with another setting would be: renewal cannot help
    with pytest.raises(LeaseTooShortError):
        lease.keep()


def test_the_retry_budget_follows_botocores_backoff_and_is_nothing_locally(store):
    from flows.aws import retry_budget_seconds
    from flows.settings import Settings

    assert store.retry_budget_seconds == 0  # no botocore retries on a local folder
    assert retry_budget_seconds(Settings(s3_max_attempts=1)) == 0
    assert retry_budget_seconds(Settings(s3_max_attempts=4)) == 1 + 2 + 4
    assert retry_budget_seconds(Settings(s3_max_attempts=10)) == 1 + 2 + 4 + 8 + 16 + 20 * 4
    s3 = Storage("s3://lake/ct/", settings=Settings(s3_max_attempts=10))
    assert s3.retry_budget_seconds == 111
