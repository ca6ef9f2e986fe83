"""``controller.resilient``: run a call in the supervised pool, with a timeout and
crash isolation, from any code (builds use it; so can other expensive steps).

    from controller import resilient

    html = resilient(render, path, data, timeout=10)   # run now

    @resilient(timeout=10)                              # or wrap a function
    def render(path, data): ...

The call runs in a worker process: a hang raises :class:`Timeout`, a crash
(segfault, ``os._exit``) :class:`Crashed`, going over the memory cap
:class:`OutOfMemory`; the function's own exceptions are raised as they are.
The function must be defined at the top level of an importable module and its
arguments and result must be picklable. ``resilient(function)`` with nothing
else wraps it; use :func:`run` to call a function of no arguments now.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable
from typing import Any

from controller.pool.supervisor import GiB, Pool
from controller.settings import Settings

_pools: dict[tuple[int | None, float, int | None], Pool] = {}
_lock = threading.Lock()


def shared_pool(
    size: int | None = None, *, timeout: float = 30.0, memory_limit: int | None = GiB
) -> Pool:
    """One pool per configuration and process, closed (workers reaped) at exit."""
    key = (size, timeout, memory_limit)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(size, timeout=timeout, memory_limit=memory_limit)
        return pool


@atexit.register
def _close_pools() -> None:
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close(kill=True)


def run(
    function: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
) -> Any:
    """Call ``function(*args, **kwargs)`` in the shared pool and return its result."""
    settings = Settings()
    pool = shared_pool(
        settings.build_workers or None,
        timeout=settings.build_timeout,
        memory_limit=settings.build_memory_limit or None,
    )
    return pool.call(function, *args, timeout=timeout, **kwargs)


def resilient(
    function: Callable[..., Any] | None = None,
    /,
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    if function is None:
        return functools.partial(_wrap, timeout=timeout)
    if not args and not kwargs:
        return _wrap(function, timeout=timeout)
    return run(function, *args, timeout=timeout, **kwargs)


def _wrap(function: Callable[..., Any], *, timeout: float | None) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run(function, *args, timeout=timeout, **kwargs)

    # The worker imports the module, finds this wrapper and calls the original.
    wrapper.__resilient_original__ = function  # type: ignore[attr-defined]
    return wrapper
