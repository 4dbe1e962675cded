"""Leadership: of all the processes on one store, exactly one acts on the fleet.

Every replica of `serve` answers the API; only the holder of the store's lease
("control-plane" in table ``leases``) sweeps, remediates and launches burn-ins. A one-shot
`computectl sweep` takes the same lease for its run, so beside a running `serve` it refuses
instead of acting twice.

Why a lease row and not a PostgreSQL advisory lock: a session's advisory lock is released
by the server when it notices the session is gone (a TCP timeout, a backend killed, a
connection pooler recycling it), a moment its holder cannot observe. The old holder may go
on acting for seconds after another has taken the lock, and nothing bounds that overlap. A
lease carries its own expiry: the holder counts it down on its monotonic clock from the
moment it *sent* the renewal (the store stamped the expiry no earlier), and stops acting a
margin before it runs out. Others can take the lease only once it has expired on the store's
clock, so the old holder has stopped acting before a new one can start (assuming clocks that
tick at the same rate, give or take the margin). ``epoch`` grows with each new holder.

SQLite is one host's: a second acting process there is refused at start (see
compute/cli/server.py); with PostgreSQL, replicas that do not hold the lease wait for it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from compute.errors import LeaseHeld
from compute.store import Store, leases
from compute.store.leases import Lease

if TYPE_CHECKING:
    from compute.config import Settings

log = logging.getLogger("computectl")

LEASE = "control-plane"
# How long a lease lasts unrenewed: how long the fleet goes without a leader after one dies.
# A failed renewal (the store did not answer) is retried this often while time is left.
RETRY_SECONDS = 0.5


def lease_seconds(settings: Settings) -> float:
    """The lease's ttl ([server] lease_seconds)."""
    return settings.server.lease_seconds


def holder_id() -> str:
    """host:pid:random: names the process in messages, and is unique even when pids repeat."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaderState:
    """What /readyz, the overview and /metrics show about leadership."""

    holder: str  # this process
    leading: bool  # acting() now
    epoch: int  # of our lease, 0 if we never held one
    leader: str | None  # the last holder we saw (us, or another), None if none seen
    leader_until: datetime | None  # when that lease runs out, on the store's clock


class Leadership:
    """The lease of one process. ``clock``: monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = LEASE,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.store = store
        self.holder = holder or holder_id()
        self.ttl = ttl
        # Covers the backend call that starts just before acting() turns false, and clock rate
        # differences between hosts: the old leader is quiet by the time the lease expires.
        self.margin = ttl / 5
        self.renew_every = ttl / 3
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._epoch = 0
        self._deadline: float | None = None  # acting() until then, by self.clock
        self._seen: Lease | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    def acting(self) -> bool:
        """True only while our lease is unexpired by our own clock, less the margin."""
        deadline = self._deadline
        return deadline is not None and self.clock() < deadline

    def _held(self, lease: Lease | None, sent: float) -> bool:
        with self._lock:
            if lease is None or lease.holder != self.holder:
                self._deadline = None
                return False
            if lease.epoch != self._epoch and self._epoch:
                log.info("leadership: lease %s taken again, epoch %d", self.name, lease.epoch)
            self._epoch = lease.epoch
            self._seen = lease
            # The store stamped the expiry after we sent: counting from `sent` errs early.
            self._deadline = sent + min(self.ttl, lease.remaining_seconds) - self.margin
            return True

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or ours; False when another holds it."""
        sent = self.clock()
        got = leases.acquire(self.store.engine, self.name, self.holder, self.ttl)
        if got is None:
            self._deadline = None
            self._seen = leases.current(self.store.engine, self.name)
            return False
        return self._held(got, sent)

    def claim(self) -> bool:
        """Take the lease as a process about to act does: when it is free, expired or ours,
        or (SQLite) held by a process of this host that no longer exists."""
        if self.try_acquire():
            return True
        return self.store.engine.dialect.name == "sqlite" and self.take_from_dead()

    def take_from_dead(self) -> bool:
        """After a failed ``try_acquire``: take the lease if its holder is a process of this
        host that no longer exists (it crashed: nothing of it acts). Only for SQLite, which
        only one host's processes share: with PostgreSQL, replicas on other hosts, or in
        other pid namespaces under the same host name, would be wrongly found dead."""
        seen = self._seen
        if seen is None or not _dead_here(seen.holder):
            return False
        sent = self.clock()
        got = leases.take_over(self.store.engine, self.name, self.holder, seen.holder, self.ttl)
        if got is not None:
            log.warning("leadership: took the lease from %s, which is gone", seen.holder)
        return self._held(got, sent)

    def renew(self) -> bool:
        """Extend our lease; False (and no longer acting) when someone else has it now."""
        if not self._epoch:
            return False
        sent = self.clock()
        got = leases.renew(self.store.engine, self.name, self.holder, self._epoch, self.ttl)
        if got is None:
            log.warning("leadership: lease %s lost (epoch %d)", self.name, self._epoch)
        return self._held(got, sent)

    def release(self) -> None:
        """Give the lease up now (on a clean stop), so another need not wait out the ttl."""
        with self._lock:
            self._deadline = None
            epoch = self._epoch
        if epoch:
            leases.release(self.store.engine, self.name, self.holder, epoch)

    def step(self) -> float:
        """Renew if we hold the lease, else try to take it; seconds until the next step."""
        try:
            if self._deadline is not None and self.renew():
                return self.renew_every
            if self.try_acquire():
                log.info("leadership: acting as %s (epoch %d)", self.holder, self._epoch)
                return self.renew_every
        except Exception:  # the store is down: retry soon, acting() lapses by itself
            log.exception("leadership: the store did not answer")
            return RETRY_SECONDS
        seen = self._seen
        if seen is None:
            return self.renew_every
        # Wake just after the other's lease runs out, rather than up to renew_every later.
        return max(0.05, min(self.renew_every, seen.remaining_seconds + 0.05))

    def keep(self, stop: threading.Event) -> None:
        """Take and renew the lease until ``stop`` is set (a thread's target), then release."""
        try:
            while not stop.wait(self.step()):
                pass
        finally:
            try:
                self.release()
            except Exception:  # the store is down: the lease expires by itself
                log.exception("leadership: could not release the lease")

    def state(self) -> LeaderState:
        seen = self._seen
        return LeaderState(
            holder=self.holder,
            leading=self.acting(),
            epoch=self._epoch,
            leader=seen.holder if seen is not None else None,
            leader_until=seen.expires_at if seen is not None else None,
        )

    def role(self) -> str:
        """One line: acting, or whom this process follows."""
        if self.acting():
            return f"acting (holds the lease, epoch {self._epoch})"
        seen = self._seen
        if seen is None or seen.holder == self.holder:
            return "waiting for the lease"
        return f"following {seen.holder} (its lease runs until {_when(seen.expires_at)})"

    def refusal(self) -> str:
        """One line naming who holds the lease and until when (after a failed try_acquire)."""
        seen = self._seen
        if seen is None:
            return "another control plane holds the lease"
        return (
            f"another control plane acts on this store: {seen.holder} holds the lease until "
            f"{_when(seen.expires_at)} (it renews it while it runs; stop it, or wait for it to "
            "lapse)"
        )


def _dead_here(holder: str) -> bool:
    """The holder (host:pid:random) ran on this host and its process is gone."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    # Alive: that process, or another that has its pid now. Either way, not known dead.
    return False


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


T = TypeVar("T")


def under_lease(lead: Leadership, work: Callable[[], T]) -> T:
    """``work`` done holding the lease: at once by the process that acts, else with the lease
    taken for it (renewed while it runs, released after). LeaseHeld if another holds it."""
    if lead.acting():
        return work()
    if not lead.claim():
        raise LeaseHeld(lead.refusal())
    done = threading.Event()
    # Renewed while the work runs (a large fleet's sweep may outlast the ttl), released after.
    keeper = threading.Thread(target=lead.keep, args=(done,), name="computectl-lease")
    keeper.start()
    try:
        return work()
    finally:
        done.set()
        keeper.join()
