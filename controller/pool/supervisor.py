"""The supervised pool: worker processes the controller owns, one call each at a time.

Unlike ``concurrent.futures.ProcessPoolExecutor``, whose one dead worker
breaks the pool and fails every pending call, each slot here has its own
thread and its own worker: a call that times out, crashes its worker or runs
it out of memory fails alone, with a typed error, and the slot starts a fresh
worker for the next call. A call is only sent to a live worker; a call lost
with its worker is answered with :class:`Crashed`, never dropped.

Workers are started from their slot's thread, which lives as long as the
pool: ``PR_SET_PDEATHSIG`` follows the thread that forked, so a worker dies
with its slot, and slots die with the process. Killed and finished workers
are always joined, so no zombie is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from controller.pool import worker
from reconcilers.errors import Crashed, OutOfMemory, Timeout

log = logging.getLogger(__name__)

#: Spawned workers start clean: no threads or locks copied from the controller.
_CONTEXT = multiprocessing.get_context("spawn")
#: How long a fresh worker may take to start (a new interpreter and its
#: imports) before it counts as crashed. A call's own timeout starts only once
#: the worker is up, so a slow start on a loaded machine never reads as a
#: build that hung.
START_TIMEOUT = 60.0
GiB = 1024**3


@dataclass
class _Call:
    module: str
    qualname: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float
    future: Future[Any]


class _Worker:
    def __init__(self, memory_limit: int | None, retire: Callable[[_Worker], None]) -> None:
        self.retire = retire
        self.conn, child_conn = _CONTEXT.Pipe()
        lifeline_r, self.lifeline = _CONTEXT.Pipe(duplex=False)
        self.process: BaseProcess = _CONTEXT.Process(
            target=worker.main,
            args=(child_conn, lifeline_r, os.getpid(), memory_limit),
            name="controller-worker",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        lifeline_r.close()
        self.started = False

    def wait_started(self) -> None:
        """Block until the worker says it is up; raise :class:`Crashed` if it never does."""
        if self.started:
            return
        if self.conn in wait([self.conn, self.process.sentinel], START_TIMEOUT):
            with contextlib.suppress(EOFError, OSError):
                self.started = self.conn.recv() == worker.READY
        if not self.started:
            self.process.join(0.1)
            code = self.process.exitcode
            state = "still starting" if code is None else _death(code)
            raise Crashed(f"the worker did not start within {START_TIMEOUT:g} s ({state})")

    @property
    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed

    def stop(self, kill: bool = False) -> None:
        """End the worker and reap it (never leave a zombie)."""
        if kill and self.process.is_alive():
            self.process.kill()
        self.conn.close()
        self.lifeline.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process.close()
        self.retire(self)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"crashed (signal {-exitcode})"
    if exitcode == worker.EXIT_OUT_OF_MEMORY:
        return "ran out of memory"
    return f"crashed (the worker exited with status {exitcode})"


class Pool:
    """``size`` worker processes; calls are module-level functions and picklable args."""

    def __init__(
        self,
        size: int | None = None,
        *,
        timeout: float = 30.0,
        memory_limit: int | None = GiB,
    ) -> None:
        self.size = size or os.cpu_count() or 1
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._slots: list[threading.Thread] = []
        self._live: set[_Worker] = set()

    def _start(self, *, eager: bool = False) -> None:
        """Slots start with the first call: a pool nobody uses costs nothing."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            if self._slots:
                return
            for n in range(self.size):
                slot = threading.Thread(
                    target=self._serve, args=(eager,), name=f"pool-slot-{n}", daemon=True
                )
                slot.start()
                self._slots.append(slot)

    def warm(self) -> None:
        """Start every worker now, so the first calls do not wait for a process start.

        A daemon wants this: without it the first build after an edit pays
        about a second of interpreter start and imports.
        """
        self._start(eager=True)

    def submit(
        self, function: Any, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Future[Any]:
        module, qualname = _reference(function)
        self._start()
        future: Future[Any] = Future()
        call = _Call(module, qualname, args, kwargs, timeout or self.timeout, future)
        self._calls.put(call)
        return future

    def call(self, function: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self.submit(function, *args, timeout=timeout, **kwargs).result()

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker and reap them; calls in flight finish first unless ``kill``.

        ``kill`` is for exiting: a hung build must not hold up a process that
        is going away (its call is answered with :class:`Crashed`).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slots = list(self._slots)
            doomed = list(self._live) if kill else []
        for _ in slots:
            self._calls.put(None)
        for item in doomed:
            with contextlib.suppress(OSError, ValueError):
                item.process.kill()
        for slot in slots:
            slot.join()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- one slot ------------------------------------------------------------------

    def _serve(self, eager: bool) -> None:
        current: _Worker | None = None
        try:
            if eager:
                with contextlib.suppress(Exception):  # the first call reports a failed start
                    current = self._spawn()
            while True:
                call = self._calls.get()
                if call is None:
                    return
                if not call.future.set_running_or_notify_cancel():
                    continue
                current = self._run(current, call)
        finally:
            if current is not None:
                current.stop()

    def _spawn(self) -> _Worker:
        fresh = _Worker(self.memory_limit, self._retire)
        with self._lock:
            self._live.add(fresh)
        return fresh

    def _retire(self, gone: _Worker) -> None:
        with self._lock:
            self._live.discard(gone)

    def _run(self, current: _Worker | None, call: _Call) -> _Worker | None:
        """Run one call; the worker to keep for the next one (None: replace it)."""
        if current is not None and not current.alive:
            current.stop(kill=True)
            current = None
        try:
            if current is None:
                current = self._spawn()
            current.wait_started()
        except Exception as exc:  # cannot start a worker
            call.future.set_exception(exc)
            if current is not None:
                current.stop(kill=True)
            return None
        try:
            current.conn.send((call.module, call.qualname, call.args, call.kwargs))
        except Exception as exc:  # cannot pickle the call
            call.future.set_exception(exc)
            return current
        ready = wait([current.conn, current.process.sentinel], call.timeout)
        if not ready:
            current.stop(kill=True)
            call.future.set_exception(Timeout(f"timed out after {call.timeout:g} s"))
            return None
        if current.conn in ready:
            try:
                kind, value = current.conn.recv()
            except (EOFError, OSError):
                kind, value = "died", None
            if kind == "ok":
                call.future.set_result(value)
                return current
            if kind == "raised":
                call.future.set_exception(value)
                return current
            if kind == "oom":
                call.future.set_exception(OutOfMemory("ran out of memory"))
                current.stop()
                return None
        current.process.join(5)
        message = _death(current.process.exitcode)
        error = OutOfMemory(message) if message == "ran out of memory" else Crashed(message)
        call.future.set_exception(error)
        log.warning("pool worker died during a call", extra={"result": message})
        current.stop(kill=True)
        return None


def _reference(function: Any) -> tuple[str, str]:
    """How a worker finds ``function``: by module and qualified name, never by value."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise TypeError(
            f"{function!r} cannot run in the pool: it must be a function defined at the"
            " top level of an importable module"
        )
    return module, qualname
