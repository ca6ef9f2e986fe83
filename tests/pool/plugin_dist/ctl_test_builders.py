"""Builders that misbehave on purpose, for the pool's tests (registered by entry point).

Each builds like the default builder when the file starts with ``ok`` (so a
fixed file builds), and otherwise raises, segfaults, hangs, allocates without
bound or exits the process.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import replace

from reconcilers.build import build_entry
from reconcilers.build.entry import EntryDraft


def _fixed(path: str, data: bytes) -> EntryDraft | None:
    """A fixed file (``ok`` and a newline, then a post) builds as a Markdown post."""
    if data.startswith(b"ok\n"):
        return replace(build_entry(path + ".md", data[3:]), path=path)
    return None


def raises(path: str, data: bytes) -> EntryDraft | None:
    return _fixed(path, data) or _raise()


def _raise() -> EntryDraft:
    raise RuntimeError("the converter broke")


def segfault(path: str, data: bytes) -> EntryDraft | None:
    if not data.startswith(b"ok"):
        ctypes.string_at(0)
    return _fixed(path, data)


def hangs(path: str, data: bytes) -> EntryDraft | None:
    if not data.startswith(b"ok"):
        time.sleep(3600)
    return _fixed(path, data)


def leaks(path: str, data: bytes) -> EntryDraft | None:
    hoard = []
    while not data.startswith(b"ok"):
        hoard.append(bytearray(64 * 1024 * 1024))
    return _fixed(path, data)


def exits(path: str, data: bytes) -> EntryDraft | None:
    if not data.startswith(b"ok"):
        os._exit(3)
    return _fixed(path, data)


class NotAPost:
    """A class-based builder that declines every file."""

    def build(self, path: str, data: bytes) -> EntryDraft | None:
        return None
