"""Leases on objects of the destination: at most one writer of a partition at a time.

A lease is a small JSON object created with a conditional write (S3
``If-None-Match: *``; locally an atomic hard link), naming its owner and when it
expires. A lease left by a killed run is taken over once expired, with a write
conditional on the ETag that was read (``If-Match``), so two runs cannot both
take it. Releasing rewrites it as expired, again conditionally, so a holder that
lost its lease never frees someone else's. See docs/adr/0010.

While a block holds a lease (``held``), a thread keeps it alive: it renews the
lease (conditionally, as ``renew`` does) when a third of its life is gone, so a holder
that is slow on a loaded machine keeps its partition, and a killed one loses it
at expiry as before. It renews only while the holder shows progress (calls
``keep`` or ``check``) within ``HUNG_AFTER_TTLS`` lives of the lease: a hung
holder loses its lease too. See docs/adr/0017.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flows.storage import Storage
from transforms.errors import PipelineError

log = logging.getLogger(__name__)

LOCKS_FOLDER = "_state/locks"

Clock = Callable[[], float]

HUNG_AFTER_TTLS = 3.0
"""A holder silent (no ``keep``/``check``) this many lease lives is hung: its lease is no
longer kept alive. The longest silence of a working holder is one step of a partition's
commit (refresh its index, encode, one PUT with its retries: under 3/4 of a life, as
``keep`` insists), so 3 lives are slack for a loaded machine, and a hung holder frees
its partition at most 4 lives after its last sign of life (20 min at the default TTL)."""


class LockTimeoutError(PipelineError):
    """Another run held a lock longer than this run was willing to wait."""


class LeaseLostError(PipelineError):
    """This run's lease ran out before its work was done: it must not write on."""


class LeaseTooShortError(PipelineError):
    """Even a fresh lease would expire before a PUT's retries could end: no PUT is made."""


@dataclass
class Lease:
    """A held lock: where, by whom, its version tag, and until when (this process's clock).

    One lock (``_guard``) serialises the holder's calls and the keep-alive thread's
    renewals, so the version each conditional write names is the latest.
    """

    storage: Storage
    path: str
    owner: str
    version: str
    ttl: float
    deadline: float
    clock: Clock = time.time
    budget: float = 0.0
    """Seconds one PUT may take with its retries (``Storage.retry_budget_seconds``)."""
    _guard: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _lost: LeaseLostError | None = field(default=None, repr=False)
    """Set when a renewal found the lease taken over: the holder's next call raises it."""
    _progress: float = field(default=0.0, repr=False)
    """When the holder last showed it is working (acquired, ``keep``, ``check``)."""
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _keeper: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._progress = self.clock()

    def check(self, margin: float | None = None) -> None:
        """Raise ``LeaseLostError`` unless the lease has ``margin`` seconds (default ttl/4) left."""
        margin = self.ttl / 4 if margin is None else margin
        with self._guard:
            self._progress = self.clock()
            if self._lost is not None:
                raise self._lost
            if self.clock() + margin > self.deadline:
                raise LeaseLostError(
                    f"lease on {self.storage.url(self.path)} ran out (ttl {self.ttl:.0f} s); "
                    "raise CTPARQUET_LOCK_TTL_SECONDS if batches take this long",
                    key=self.storage.url(self.path),
                )

    def renew(self) -> None:
        """Push the expiry ``ttl`` seconds ahead; raise ``LeaseLostError`` if taken over.

        Safe even past the deadline: the write is conditional on this lease's own
        version, which anyone taking the lease over has replaced.
        """
        with self._guard:
            if self._lost is not None:
                raise self._lost
            now = self.clock()
            version = self.storage.replace_if(
                self.path, _body(self.owner, now + self.ttl), self.version
            )
            if version is None:
                self._lost = LeaseLostError(
                    f"lease on {self.storage.url(self.path)} was taken over",
                    key=self.storage.url(self.path),
                )
                raise self._lost
            self.version, self.deadline = version, now + self.ttl

    def keep(self) -> None:
        """Before a PUT: make sure the lease outlives it, with its retries, or refuse.

        The PUT needs the retry budget plus a quarter of the lease (the margin for clock
        skew and a pause between this check and the request). The lease is renewed if
        less is left, or half its life is gone; ``LeaseTooShortError`` if even a fresh
        lease is too short, ``LeaseLostError`` if it was taken over meanwhile.
        """
        needed = _needed(self.ttl, self.budget, self.storage.url(self.path))
        with self._guard:
            self._progress = self.clock()
            if self.clock() + max(needed, self.ttl / 2) > self.deadline:
                self.renew()
            self.check(needed)

    def keep_alive(self) -> Lease:
        """Start the thread that renews this lease while its holder works; until ``release``."""
        if self._keeper is None:
            self._keeper = threading.Thread(
                target=self._keep_alive, name=f"lease {self.path}", daemon=True
            )
            self._keeper.start()
        return self

    def _keep_alive(self) -> None:
        # Wakes 8 times a lease's life: a renewal is due when a third of it is gone, so a
        # late wake-up or a slow request on a loaded machine still leaves most of the life
        # (at half, 2 s leases were still taken over from working holders at load 6).
        while not self._stop.wait(self.ttl / 8):
            with self._guard:
                if self._stop.is_set() or self._lost is not None:
                    return
                now = self.clock()
                if now - self._progress > HUNG_AFTER_TTLS * self.ttl:
                    log.warning(
                        "lease %s: its holder showed no progress for %.0f s; left to expire",
                        self.storage.url(self.path), now - self._progress,
                    )  # fmt: skip
                    return
                if now + self.ttl * 2 / 3 <= self.deadline:
                    continue
                try:
                    self.renew()
                except LeaseLostError:
                    log.warning("lease %s was taken over", self.storage.url(self.path))
                    return  # the holder's next keep() or check() raises it
                except Exception as error:  # noqa: BLE001 - a failed renewal is tried again
                    log.warning("lease %s: renewal failed (%s)", self.storage.url(self.path), error)

    def release(self) -> None:
        """Stop keeping the lease alive; mark it expired, unless another run took it over."""
        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join()
        with self._guard:
            # Known lost: no write at all. Else the write is conditional on our version.
            if self._lost is not None or (
                self.storage.replace_if(self.path, _body(self.owner, 0.0), self.version) is None
            ):
                log.warning("lease %s was taken over before release", self.storage.url(self.path))


def owner_name() -> str:
    """Who holds a lease, for people reading a lock object: host, process, a unique tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(
    storage: Storage,
    path: str,
    *,
    ttl: float,
    wait: float,
    owner: str | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    budget: float = 0.0,
) -> Lease:
    """Take the lease at ``path``, waiting up to ``wait`` seconds for a live holder to finish."""
    _needed(ttl, budget, storage.url(path))  # refuse before taking a lease too short to use
    owner = owner or owner_name()
    give_up = clock() + wait
    pause = 0.05
    while True:
        now = clock()
        version = storage.create_exclusive(path, _body(owner, now + ttl))
        if version is not None:
            return Lease(storage, path, owner, version, ttl, now + ttl, clock, budget)
        current = storage.read_versioned(path)
        if current is not None:
            holder, expires = _parse(current[0])
            if expires <= now:  # Expired or released: take it over, if nobody beats us to it.
                version = storage.replace_if(path, _body(owner, now + ttl), current[1])
                if version is not None:
                    if expires > 0:
                        log.info("took over lease %s expired from %s", path, holder)
                    return Lease(storage, path, owner, version, ttl, now + ttl, clock, budget)
                continue
            if now >= give_up:
                raise LockTimeoutError(
                    f"lock held by {holder} until {time.strftime('%H:%M:%S', time.gmtime(expires))}"
                    f" UTC; waited {wait:.0f} s",
                    key=storage.url(path),
                )
        sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 2.0)


@contextlib.contextmanager
def held(storage: Storage, path: str, *, wait: float | None = None) -> Iterator[Lease]:
    """Hold the lease at ``path`` for a block, with the storage's lock settings, kept alive.

    ``wait``: seconds to wait for a live holder (0: one attempt), instead of the setting's.
    """
    lease = acquire(
        storage,
        path,
        ttl=storage.settings.lock_ttl_seconds,
        wait=storage.settings.lock_wait_seconds if wait is None else wait,
        budget=storage.retry_budget_seconds,
    )
    try:
        yield lease.keep_alive()
    finally:
        lease.release()


def partition_lock(
    dest: Storage, partition: str, *, wait: float | None = None
) -> contextlib.AbstractContextManager[Lease]:
    """The lease on one table partition (``region=…/year=…/month=…/day=…``)."""
    return held(dest, dest.path(LOCKS_FOLDER, "events", partition, "lock.json"), wait=wait)


def _needed(ttl: float, budget: float, where: str) -> float:
    """Seconds of lease a PUT needs: its retry budget plus a quarter of the lease's life."""
    needed = budget + ttl / 4
    if needed >= ttl:
        raise LeaseTooShortError(
            f"a lease of {ttl:.0f} s cannot cover a PUT: its S3 retries may take {budget:.0f} s, "
            f"plus a margin of {ttl / 4:.0f} s; set CTPARQUET_LOCK_TTL_SECONDS above "
            f"{budget * 4 / 3:.0f} or lower CTPARQUET_S3_MAX_ATTEMPTS",
            key=where,
        )
    return needed


def _body(owner: str, expires: float) -> bytes:
    return json.dumps({"owner": owner, "expires": round(expires, 3)}).encode()


def _parse(data: bytes) -> tuple[str, float]:
    try:
        found = json.loads(data)
        return str(found.get("owner", "?")), float(found.get("expires", 0.0))
    except (ValueError, TypeError, AttributeError):
        return "?", 0.0  # An unreadable lock object is taken as expired.
