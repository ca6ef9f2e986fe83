"""The library API: ``with controller.sync(blog_id) as folder: ...``.

For code that changes a blog and wants the controller's guarantees around it:
while the block runs this process holds the blog's lease (no daemon replica
and no other ``sync()`` changes the blog), and every store write is fenced.
Nested use in the same thread shares the lease; the lease is released when
the outermost block exits, also when it raises.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.errors import LeaseLost
from controller.leases import Lease, Leases, open_leases
from controller.reconcile import PassReport, Reconciler
from controller.settings import Settings
from controller.store import Store
from reconcilers.core.tree import normalise_path
from reconcilers.errors import InvalidPath

log = logging.getLogger(__name__)


@dataclass
class _Runtime:
    store: Store
    leases: Leases
    reconciler: Reconciler


_runtimes: dict[tuple[str, str | None], _Runtime] = {}
_runtimes_lock = threading.Lock()


def _runtime(settings: Settings) -> _Runtime:
    """One store and one lease registry per database: nested ``sync()`` must share them."""
    key = (settings.effective_database_url, settings.redis_url)
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            store = Store.from_settings(settings)
            leases = open_leases(store, settings)
            runtime = _Runtime(store, leases, Reconciler(store, settings, leases))
            _runtimes[key] = runtime
        return runtime


class Folder:
    """A blog held by this process: its folder, and ways to act on it."""

    def __init__(self, runtime: _Runtime, lease: Lease, path: Path) -> None:
        self._runtime = runtime
        self._lease = lease
        self.blog_id = lease.blog_id
        self.path = path

    def update(self, path: str) -> PassReport:
        """Re-observe the source (``path`` included) and reconcile the blog now.

        Returns the pass's report; ``state(path)`` tells what became of the path.
        """
        try:
            normalise_path(path)
        except InvalidPath as exc:
            exc.blog_id, exc.path = self.blog_id, path
            raise
        self._lease.check()
        return self._runtime.reconciler.reconcile(self.blog_id)

    def state(self, path: str) -> str | None:
        """The path's state in the synced tree (``synced``, ``rejected``...), None if absent."""
        state = self._runtime.store.state_of(self.blog_id, normalise_path(path))
        return None if state is None else state.value

    def status(self, message: str) -> None:
        """Show ``message`` as the blog's status (dashboard, ``controller blog list``)."""
        self._lease.check()
        self._runtime.store.set_status(self.blog_id, "syncing", message)

    def log(self, message: str) -> None:
        """Add ``message`` to the blog's history."""
        self._lease.check()
        self._runtime.store.log(self.blog_id, message)
        log.info(message, extra={"blog": self.blog_id, "action": "log"})


@contextmanager
def sync(blog_id: str, *, wait: float = 60.0, settings: Settings | None = None) -> Iterator[Folder]:
    """Hold ``blog_id`` for the block; ``LeaseBusy`` when another process keeps it past ``wait``.

    ``LeaseLost`` is raised by the folder's methods (and by the store) once the
    lease may have passed to another process: stop changing the blog then.
    """
    runtime = _runtime(settings or Settings())
    blog = runtime.store.get_blog(blog_id)
    with runtime.leases.hold(blog_id, wait) as lease:
        yield Folder(runtime, lease, Path(blog.folder))


__all__ = ["Folder", "LeaseLost", "sync"]
