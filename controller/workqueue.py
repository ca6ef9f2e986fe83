"""When to run: an in-process work queue of blog ids with client-go semantics.

The daemon's workers take blog ids from one ``WorkQueue``. The queue promises
what a reconcile loop needs:

- a key is never handed to two workers at once;
- adding a key that is already waiting collapses into the waiting item, so a
  burst of changes costs one reconcile;
- adding a key that a worker is processing marks it dirty: it is handed out
  again once, after ``done``, so the change is never lost;
- delayed adds (``add_after``) and per-key exponential backoff with full
  jitter (``add_rate_limited``) retry failures without hammering a source.

Each key has at most one pending due time and the earliest wins: a plain
``add`` makes a delayed key due now, and a delayed add for a key that is
already due is dropped.

Time comes from an injected clock (due times, metrics) so tests drive a fake
clock and poll with ``get(timeout=0)``; only the real blocking wait in
``get`` uses wall time, for a duration computed from that clock.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from controller.metrics import Metrics


def backoff_delay(
    failures: int, rng: random.Random, base: float = 1.0, cap: float = 900.0
) -> float:
    """Seconds to wait before retry ``failures`` (0 for the first retry).

    Full jitter (uniform in ``[0, min(cap, base * 2**failures)]``) spreads the
    retries of blogs that failed together, e.g. when a source went down.
    """
    try:
        ceiling = min(cap, base * 2**failures)
    except OverflowError:  # 2**failures beyond a float: far past any cap
        ceiling = cap
    return rng.uniform(0, ceiling)


class WorkQueue:
    """A thread-safe queue of keys: dirty and processing sets, delays, a rate limiter."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        base_delay: float = 1.0,
        max_delay: float = 900.0,
    ) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._metrics = metrics
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._cond = threading.Condition()
        self._ready: deque[str] = deque()  # dirty keys not being processed, FIFO
        self._dirty: set[str] = set()  # keys that need a (further) run
        self._processing: set[str] = set()
        self._waiting: list[tuple[float, int, str]] = []  # heap of delayed adds
        self._due: dict[str, tuple[float, int]] = {}  # each key's live heap entry
        self._seq = 0
        self._failures: dict[str, int] = {}
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._shutting_down = False

    # -- adding ----------------------------------------------------------------

    def add(self, key: str) -> None:
        """Ask for one run of ``key`` now (collapsed into a pending one, if any)."""
        with self._cond:
            self._due.pop(key, None)  # its heap entry goes stale: due now instead
            self._add_locked(key)

    def add_after(self, key: str, delay: float) -> None:
        """Ask for one run of ``key`` once ``delay`` seconds have passed."""
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return
            if delay <= 0:
                self._due.pop(key, None)
                self._add_locked(key)
                return
            due = self._clock() + delay
            current = self._due.get(key)
            if current is not None and current[0] <= due:
                return
            self._seq += 1
            self._due[key] = (due, self._seq)
            heapq.heappush(self._waiting, (due, self._seq, key))
            self._cond.notify_all()  # sleeping getters may now have an earlier deadline

    def add_rate_limited(self, key: str) -> None:
        """Retry ``key`` after its backoff; each call doubles the next one's ceiling."""
        with self._cond:
            if self._shutting_down:
                return
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            if self._metrics:
                self._metrics.workqueue_retries_total.inc()
            delay = backoff_delay(failures, self._rng, self._base_delay, self._max_delay)
            self.add_after(key, delay)  # the condition's lock is reentrant

    def forget(self, key: str) -> None:
        """Reset ``key``'s backoff (after a successful run)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        """Rate-limited adds of ``key`` since it was last forgotten."""
        with self._cond:
            return self._failures.get(key, 0)

    # -- working ---------------------------------------------------------------

    def get(self, timeout: float | None = None) -> str | None:
        """Take the next ready key; ``None`` after ``timeout`` seconds or on shutdown.

        The key stays "processing" until ``done(key)``; no other worker gets it
        meanwhile.
        """
        with self._cond:
            now = self._clock()
            deadline = None if timeout is None else now + timeout
            while True:
                if self._shutting_down:
                    return None
                self._promote(now)
                if self._ready:
                    return self._hand_out(now)
                waits = []
                if deadline is not None:
                    if now >= deadline:
                        return None
                    waits.append(deadline - now)
                if self._waiting:
                    waits.append(self._waiting[0][0] - now)
                self._cond.wait(min(waits) if waits else None)
                now = self._clock()

    def done(self, key: str) -> None:
        """Finish processing ``key``; if it was added meanwhile it is ready again."""
        with self._cond:
            if key not in self._processing:
                raise ValueError(f"done({key!r}) for a key that is not being processed")
            self._processing.remove(key)
            started = self._started_at.pop(key, None)
            if self._metrics and started is not None:
                self._metrics.workqueue_work_duration_seconds.observe(self._clock() - started)
            if key in self._dirty:
                self._ready.append(key)
                self._set_depth()
                self._cond.notify()

    def shut_down(self) -> None:
        """Stop: wake every waiting ``get`` (they return ``None``) and ignore new adds.

        Waiting and delayed keys are dropped; keys being processed stay so that
        their workers can still call ``done``.
        """
        with self._cond:
            self._shutting_down = True
            self._ready.clear()
            self._dirty.clear()
            self._waiting.clear()
            self._due.clear()
            self._added_at.clear()
            self._set_depth()
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    # -- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        """Depth: keys ready to be handed out now (delayed keys count once due)."""
        with self._cond:
            if not self._shutting_down:
                self._promote(self._clock())
            return len(self._ready)

    def processing(self) -> frozenset[str]:
        """Keys held by workers now."""
        with self._cond:
            return frozenset(self._processing)

    # -- internals (the condition's lock is held) ------------------------------

    def _add_locked(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._metrics:
            self._metrics.workqueue_adds_total.inc()
            self._added_at.setdefault(key, self._clock())
        if key not in self._processing:
            self._ready.append(key)
            self._set_depth()
            self._cond.notify()

    def _promote(self, now: float) -> None:
        """Move delayed adds that are due into the queue; drop stale heap entries."""
        while self._waiting:
            due, seq, key = self._waiting[0]
            live = self._due.get(key) == (due, seq)
            if live and due > now:
                return
            heapq.heappop(self._waiting)
            if live:
                del self._due[key]
                self._add_locked(key)

    def _hand_out(self, now: float) -> str:
        key = self._ready.popleft()
        self._dirty.remove(key)
        self._processing.add(key)
        if self._metrics:
            added = self._added_at.pop(key, None)
            if added is not None:
                self._metrics.workqueue_queue_duration_seconds.observe(now - added)
            self._started_at[key] = now
        self._set_depth()
        return key

    def _set_depth(self) -> None:
        if self._metrics:
            self._metrics.workqueue_depth.set(len(self._ready))
