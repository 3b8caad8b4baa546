"""A held lease is kept alive apart from the work: on a local folder and on S3 (moto).

Real time, short leases (1 s): the holder's work outlasts its lease, another writer
tries to take it meanwhile; a taken-over lease is reported to the holder; a hung
holder's lease expires; a released one is left alone.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from flows.lock import HUNG_AFTER_TTLS, LeaseLostError, LockTimeoutError, acquire, held
from flows.settings import Settings
from flows.storage import Storage

TTL = 1.0


def storage(request, tmp_path, ttl: float) -> Storage:
    # One attempt per S3 request: a PUT's retries need no lease time (ADR 15).
    settings = Settings(lock_ttl_seconds=ttl, s3_max_attempts=1)
    if request.param == "local":
        return Storage(str(tmp_path / "lake"), settings=settings)
    s3 = request.getfixturevalue("s3")
    s3.client().create_bucket(Bucket="lake")
    store = Storage("s3://lake/ct/", settings=settings)
    # The first request builds the S3 client: a second or more on a loaded machine (the whole
    # suite on two workers), all of it spent from a lease taken by that request, which is
    # then born expired and rightly taken by the rival. Production leases live 5 minutes.
    assert store.read_versioned(store.path("_state/warm-up")) is None
    return store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    return storage(request, tmp_path, TTL)


@pytest.fixture(params=["local", "s3"])
def slow_store(request, tmp_path):
    """Leases of 2 s: a renewer on a loaded machine may wake late, by up to a third."""
    return storage(request, tmp_path, 2 * TTL)


def rival(store: Storage, path: str):
    """Another writer's single attempt at the lease (the lease it took, or None)."""
    try:
        return acquire(store, path, ttl=TTL, wait=0, owner="rival")
    except LockTimeoutError:
        return None


def keepers(path: str) -> int:
    """Threads keeping the lease at ``path`` alive."""
    return sum(thread.name == f"lease {path}" for thread in threading.enumerate())


def expiry(store: Storage, path: str) -> float:
    return float(json.loads(store.read(path))["expires"])


def test_a_lease_held_through_work_longer_than_its_life_is_not_taken_over(store):
    path = store.path("_state/locks/p/lock.json")
    with held(store, path) as lease:
        started = time.time()
        taken = []
        # 2.5 lives of work without a word to the lease (a long encode), while a rival tries.
        while time.time() - started < 2.5 * TTL:
            taken.append(rival(store, path))
            time.sleep(TTL / 10)
        assert taken and not any(taken), "a rival took the lease of a working holder"
        lease.keep()  # the holder goes on: its lease is still its own
        assert expiry(store, path) > time.time()
    assert expiry(store, path) == 0  # released
    assert rival(store, path) is not None


def test_a_lease_taken_over_is_reported_to_its_holder(store):
    path = store.path("_state/locks/p/lock.json")
    with held(store, path) as lease:
        # Another run takes the lease over (as if it had expired on its clock).
        current = store.read_versioned(path)
        assert current is not None
        other = json.dumps({"owner": "other", "expires": time.time() + 60}).encode()
        assert store.replace_if(path, other, current[1]) is not None
        deadline = time.time() + 10 * TTL
        with pytest.raises(LeaseLostError, match="taken over"):
            while time.time() < deadline:  # the renewer finds it within half a life
                lease.check(margin=0)
                time.sleep(TTL / 10)
        with pytest.raises(LeaseLostError, match="taken over"):
            lease.keep()  # never a write after the loss
    assert json.loads(store.read(path))["owner"] == "other"  # its release freed nothing


def test_a_hung_holders_lease_expires(slow_store):
    store, ttl = slow_store, slow_store.settings.lock_ttl_seconds
    path = store.path("_state/locks/p/lock.json")
    with held(store, path) as lease:
        started = time.time()
        # The holder hangs: no keep() or check(). A rival waits for the lease.
        taker = acquire(store, path, ttl=ttl, wait=20 * ttl, owner="rival")
        waited = time.time() - started
        # Kept alive for HUNG_AFTER_TTLS lives of silence, then left to expire.
        assert HUNG_AFTER_TTLS * ttl <= waited < (HUNG_AFTER_TTLS + 6) * ttl
        with pytest.raises(LeaseLostError):
            lease.keep()
    assert json.loads(store.read(path))["owner"] == "rival"
    taker.release()


def test_release_stops_the_renewals(store):
    path = store.path("_state/locks/p/lock.json")
    with held(store, path):
        time.sleep(TTL)  # renewed at least once meanwhile
        assert keepers(path) == 1
    assert keepers(path) == 0
    released = store.read_versioned(path)
    time.sleep(2 * TTL)
    assert store.read_versioned(path) == released  # no renewal after the release
    assert expiry(store, path) == 0
