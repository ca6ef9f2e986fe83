"""When a blog's next pass is due: periodic resync with jitter, retries, backoff.

Recorded in the store at the end of every pass (``blogs.next_pass_at_ns``), so
any replica of the daemon sees the same schedule and a restart loses nothing.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from controller.settings import Settings
from controller.store import BlogRecord
from controller.workqueue import backoff_delay

#: Periodic resyncs are spread by this much either way, so blogs added together
#: do not stay in lockstep.
JITTER = 0.1


class PassPolicy:
    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()

    def next_after_success(self, now_ns: int, settled_until_ns: int | None) -> int:
        """The next resync, or a failed file's retry when that comes first."""
        spread = self.rng.uniform(1 - JITTER, 1 + JITTER)
        resync = now_ns + int(self.settings.resync_interval * spread * 1e9)
        return min(resync, settled_until_ns) if settled_until_ns else resync

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (full jitter)."""
        return backoff_delay(
            max(0, failures - 1),
            self.rng,
            base=self.settings.backoff_base,
            cap=self.settings.backoff_cap,
        )

    def next_after_failure(self, now_ns: int, failures: int) -> int:
        return now_ns + int(self.backoff(failures) * 1e9)

    def wants_full(self, blog: BlogRecord, now: datetime) -> bool:
        """Full validation (local scan, drift repair) once per ``full_interval``."""
        if blog.last_full_at is None:
            return True
        return now - blog.last_full_at >= timedelta(seconds=self.settings.full_interval)
