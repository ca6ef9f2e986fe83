"""Injected failures, queued per route and consumed in order.

A fault is the answer Dropbox itself would give when it has a bad moment (429,
5xx, an expired token, a cursor reset) or a broken download, so a client's
recovery code runs against the real wire format.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

DOWNLOAD = "files/download"
RESETTABLE = ("files/list_folder/continue", "files/list_folder/longpoll")
KINDS = ("rate_limit", "server_error", "truncate", "corrupt", "reset", "expired_token")


@dataclass
class Fault:
    route: str
    kind: str
    times: int = 1
    retry_after: int = 1
    status: int = 500
    path: str | None = None  # downloads only: the path_lower the fault applies to

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.kind in ("truncate", "corrupt") and self.route != DOWNLOAD:
            raise ValueError(f"{self.kind!r} applies to {DOWNLOAD} only")
        if self.kind == "reset" and self.route not in RESETTABLE:
            raise ValueError(f"'reset' applies to {RESETTABLE} only")
        if self.path is not None and self.route != DOWNLOAD:
            raise ValueError(f"path= applies to {DOWNLOAD} only")
        if not 500 <= self.status <= 504:
            raise ValueError("status must be in 500..504")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.path is not None:
            self.path = self.path.lower()


@dataclass
class Faults:
    queues: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    def add(self, fault: Fault) -> None:
        self.queues[fault.route].append(fault)

    def take(self, route: str, path_lower: str | None = None) -> Fault | None:
        """The first queued fault that applies, one of its ``times`` used up."""
        queue = self.queues.get(route)
        if not queue:
            return None
        for fault in queue:
            if fault.path is None or fault.path == path_lower:
                fault.times -= 1
                if fault.times == 0:
                    queue.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.queues.clear()
