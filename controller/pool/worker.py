"""The worker side of the supervised pool: one process, one call at a time.

A worker must never outlive the controller. On Linux the kernel kills it when
its parent thread dies (``PR_SET_PDEATHSIG``); everywhere, a thread blocks on
a lifeline pipe whose only write end the parent holds, and exits the process
when that pipe reports end-of-file (the parent is gone), even while the main
thread is stuck in a hung call.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import resource
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

PR_SET_PDEATHSIG = 1
#: The exit status of a worker that hit its memory cap and could not even answer.
EXIT_OUT_OF_MEMORY = 86
#: The first message of every worker: its interpreter and imports are done.
READY = ("ready", None)


def _die_with_parent(parent_pid: int, lifeline: Connection) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the lifeline below still works
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _cap_memory(limit: int | None) -> None:
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def resolve(module: str, qualname: str) -> Any:
    """A module-level callable by name; a ``resilient`` wrapper gives its original."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "__resilient_original__", target)


def main(conn: Connection, lifeline: Connection, parent_pid: int, memory_limit: int | None) -> None:
    """Serve calls until the supervisor closes the connection."""
    _die_with_parent(parent_pid, lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle
    _cap_memory(memory_limit)
    conn.send(READY)
    while True:
        try:
            module, qualname, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = resolve(module, qualname)(*args, **kwargs)
            answer: tuple[str, Any] = ("ok", result)
        except MemoryError:
            answer = ("oom", None)
        except BaseException as exc:  # the caller decides what an exception means
            answer = ("raised", exc)
        try:
            conn.send(answer)
        except MemoryError:
            os._exit(EXIT_OUT_OF_MEMORY)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("raised", RuntimeError(f"cannot send the answer back: {exc!r}")))
        if answer[0] == "oom":
            return  # the heap may be fragmented; a fresh worker replaces this one
