"""Runtime layer: settings, store, leases, the reconcile pass, the daemon, CLI.

``controller.sync(blog_id)`` is the library API (see :mod:`controller.api`);
it is imported on first use so the CLI does not pay for it at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.api import sync as sync


def __getattr__(name: str) -> Any:
    if name == "sync":
        from controller.api import sync

        return sync
    raise AttributeError(f"module 'controller' has no attribute {name!r}")
