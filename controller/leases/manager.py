"""A process's leases: acquired with a wait, re-entrant per thread, renewed on
their own thread, and registered with the store so every write is fenced.

Two guards, because a lease alone guarantees nothing (a paused process wakes
up believing it still holds one): ``Lease.check()`` at each checkpoint of a
pass stops a holder whose lease may have passed to someone else before it
touches the folder again, and the store's fence rejects any write that still
slips through with an old token.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from controller.errors import LeaseBackendError, LeaseBusy, LeaseLost
from controller.leases.base import Grant, LeaseBackend, holder_is_dead_here, new_holder
from controller.metrics import METRICS, Metrics
from controller.store import Store

if TYPE_CHECKING:
    from controller.settings import Settings

log = logging.getLogger(__name__)

#: How often a waiting acquirer asks again.
RETRY_S = 0.2


class Lease:
    """One held lease. ``check()`` raises :class:`LeaseLost` once it may have ended."""

    def __init__(self, grant: Grant, ttl_s: float, clock: Callable[[], float]) -> None:
        self.grant = grant
        self.ttl_s = ttl_s
        self.depth = 1
        self._clock = clock
        self._renewed = clock()
        self._lost: str | None = None
        #: Set when the block ended: a renewal still in flight then is not a loss.
        self.released = False
        self.reported = False

    @property
    def blog_id(self) -> str:
        return self.grant.blog_id

    @property
    def token(self) -> int:
        return self.grant.token

    def renewed(self, at: float) -> None:
        self._renewed = max(self._renewed, at)

    def lose(self, reason: str) -> None:
        self._lost = self._lost or reason

    @property
    def lost(self) -> str | None:
        if self._lost:
            return self._lost
        silent = self._clock() - self._renewed
        if silent > self.ttl_s:
            return (
                f"not renewed for {silent:.0f} s: the lease backend did not answer "
                "or this process was paused"
            )
        return None

    def check(self) -> None:
        reason = self.lost
        if reason is not None:
            raise LeaseLost(
                f"lost the lease ({reason}); another process may own the blog now, "
                "so this pass stops here",
                blog_id=self.blog_id,
            )


class Leases:
    def __init__(
        self,
        store: Store,
        backend: Callable[[], LeaseBackend],
        *,
        ttl_s: float = 30.0,
        renew_every_s: float = 10.0,
        reclaim_dead: bool = False,
        metrics: Metrics = METRICS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.backend = backend()
        self._renewal_backend = backend()
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.reclaim_dead = reclaim_dead
        self.metrics = metrics
        self._clock = clock
        self._held: dict[tuple[int, str], Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def ttl_ns(self) -> int:
        return int(self.ttl_s * 1e9)

    # -- acquiring ---------------------------------------------------------------

    @contextmanager
    def hold(self, blog_id: str, wait: float = 0.0) -> Iterator[Lease]:
        """Hold ``blog_id`` for the block; nested use in the same thread shares the lease."""
        key = (threading.get_ident(), blog_id)
        with self._lock:
            lease = self._held.get(key)
            if lease is not None:
                lease.depth += 1
        if lease is None:
            lease = self._acquire(blog_id, wait)
            with self._lock:
                self._held[key] = lease
            self._start_renewer()
        try:
            yield lease
        finally:
            lease.depth -= 1
            if lease.depth == 0:
                with self._lock:
                    self._held.pop(key, None)
                if lease.lost:
                    self._report_lost(lease)
                if not lease.released:
                    self._release(lease)
                self.store.unfence(blog_id, lease.token)

    def _acquire(self, blog_id: str, wait: float) -> Lease:
        self.store.get_blog(blog_id)
        deadline = self._clock() + max(0.0, wait)
        holder = new_holder(secrets.token_hex(4))
        while True:
            grant = self.backend.acquire(
                blog_id, holder, self.ttl_ns, self.store.fence_token(blog_id)
            )
            if grant is not None and self.store.raise_fence(blog_id, grant.token):
                self.store.fence(blog_id, grant.token)
                self.metrics.leases_acquired_total.inc()
                log.info("lease acquired", extra={"blog": blog_id, "token": grant.token})
                return Lease(grant, self.ttl_s, self._clock)
            if grant is not None:
                # The store has seen a newer token than this grant: give it back.
                self.backend.release(grant)
            holding = self.backend.holding(blog_id)
            if (
                holding is not None
                and self.reclaim_dead
                and holder_is_dead_here(holding.holder)
                and self.backend.break_lease(blog_id, holding.holder)
            ):
                log.warning(
                    "lease of a dead process freed",
                    extra={"blog": blog_id, "holder": holding.holder},
                )
                continue
            remaining = deadline - self._clock()
            if remaining <= 0:
                if holding is None:
                    raise LeaseBusy(
                        f"blog {blog_id} is busy (its lease is changing hands)", blog_id=blog_id
                    )
                since = holding.acquired_at.isoformat(timespec="seconds")
                raise LeaseBusy(
                    f"blog {blog_id} is busy (held by {holding.process} since {since})",
                    blog_id=blog_id,
                )
            time.sleep(min(RETRY_S, remaining))

    def _release(self, lease: Lease) -> None:
        lease.released = True
        try:
            released = self.backend.release(lease.grant)
        except LeaseBackendError as exc:
            log.warning(
                "lease not released (it will expire)",
                extra={"blog": lease.blog_id, "error": str(exc)},
            )
        else:
            if released:
                log.info("lease released", extra={"blog": lease.blog_id, "token": lease.token})

    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._held.values())

    # -- renewing ----------------------------------------------------------------

    def _start_renewer(self) -> None:
        with self._lock:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(
                target=self._renew_loop, name="lease-renewer", daemon=True
            )
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            self.renew_now()

    def renew_now(self) -> None:
        for lease in self.held():
            if lease.lost:
                self._report_lost(lease)
                continue
            started = self._clock()
            try:
                mine = self._renewal_backend.renew(lease.grant, self.ttl_ns)
            except LeaseBackendError as exc:
                log.warning(
                    "lease renewal failed", extra={"blog": lease.blog_id, "error": str(exc)}
                )
                continue
            if mine:
                lease.renewed(started)
            elif not lease.released:
                lease.lose("another process took it over")
                self._report_lost(lease)

    def _report_lost(self, lease: Lease) -> None:
        """Count and log a lost lease once, however it was found out."""
        if lease.reported:
            return
        lease.reported = True
        self.metrics.lease_lost_total.inc()
        log.error(
            "lease lost",
            extra={"blog": lease.blog_id, "token": lease.token, "reason": lease.lost},
        )

    def close(self) -> None:
        """Stop renewing and release every lease still held (shutdown)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        for lease in self.held():
            # A block still running past the shutdown grace stops at its next
            # checkpoint; its fence stays until it exits, so a newer holder
            # still locks it out of the store.
            lease.lose("released at shutdown")
            lease.reported = True
            self._release(lease)
        with self._lock:
            self._held.clear()
        self.backend.close()
        self._renewal_backend.close()


def open_leases(store: Store, settings: Settings, metrics: Metrics = METRICS) -> Leases:
    """Redis when ``CONTROLLER_REDIS_URL`` is set, the store's database otherwise."""
    if settings.redis_url:
        from controller.leases.redis import RedisLeases  # only then: redis-py costs imports

        url = settings.redis_url
        return Leases(
            store,
            lambda: RedisLeases(url),
            ttl_s=settings.lease_ttl,
            renew_every_s=settings.lease_renew,
            metrics=metrics,
        )
    from controller.leases.sql import SqlLeases

    return Leases(
        store,
        lambda: SqlLeases(store.url),
        ttl_s=settings.lease_ttl,
        renew_every_s=settings.lease_renew,
        reclaim_dead=store.engine.dialect.name == "sqlite",
        metrics=metrics,
    )
