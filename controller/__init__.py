"""Runtime layer: settings, store, leases, the reconcile pass, the daemon, CLI.

``controller.sync(blog_id)`` is the library API (see :mod:`controller.api`),
``controller.resilient`` runs a call in the supervised pool (see
:mod:`controller.pool.resilient`); both are imported on first use so the CLI
does not pay for them at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.api import sync as sync
    from controller.pool import resilient as resilient


def __getattr__(name: str) -> Any:
    if name == "sync":
        from controller.api import sync

        return sync
    if name == "resilient":
        from controller.pool import resilient

        return resilient
    raise AttributeError(f"module 'controller' has no attribute {name!r}")
