"""Module-level functions the pool's tests run in worker processes."""

from __future__ import annotations

import ctypes
import os
import time

from controller.pool import resilient


def double(x: int) -> int:
    return x * 2


def pid() -> int:
    return os.getpid()


def fails() -> None:
    raise ValueError("a plain exception comes back as itself")


def segfault() -> None:
    ctypes.string_at(0)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def leak() -> None:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def exit_now(status: int) -> None:
    os._exit(status)


@resilient(timeout=1)
def slow_square(x: int, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return x * x


@resilient
def where() -> int:
    return os.getpid()
