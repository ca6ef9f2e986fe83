"""What every lease backend provides, and the values they exchange.

A lease says who may change a blog now; its token (a number that grows with
every grant) is what makes that safe: the store rejects writes that carry a
token older than the newest it has seen (see ``Store.fenced``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Grant:
    """A lease a backend granted: ``token`` fences every write made under it."""

    blog_id: str
    holder: str
    token: int
    acquired_at: datetime


@dataclass(frozen=True)
class Holding:
    """Who holds a blog now, for messages ("held by HOST:PID since ...")."""

    holder: str
    token: int
    acquired_at: datetime
    expires_at_ns: int

    @property
    def process(self) -> str:
        """``HOST:PID`` without the per-acquisition nonce."""
        return ":".join(self.holder.split(":")[:2])


class LeaseBackend(Protocol):
    def acquire(self, blog_id: str, holder: str, ttl_ns: int, floor: int) -> Grant | None:
        """Grant the lease if it is free or expired; the token is above ``floor``."""

    def renew(self, grant: Grant, ttl_ns: int) -> bool:
        """Extend the lease; False when ``grant`` is no longer the holder."""

    def release(self, grant: Grant) -> bool:
        """Give the lease up if ``grant`` still holds it; False when it did not."""

    def holding(self, blog_id: str) -> Holding | None:
        """The current holder, if any (expired leases count as free)."""

    def break_lease(self, blog_id: str, holder: str) -> bool:
        """Free a lease whose holder is known to be dead."""

    def close(self) -> None: ...


def new_holder(nonce: str) -> str:
    """``HOST:PID:NONCE``: the nonce tells apart two acquisitions of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{nonce}"


def holder_is_dead_here(holder: str) -> bool:
    """True only when ``holder`` names a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
