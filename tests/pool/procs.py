"""Reading this process's children from /proc: worker processes, zombies, liveness."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int | None = None) -> dict[int, str]:
    """Child pid -> state letter (``Z`` for a zombie) of ``pid`` (default: this process)."""
    parent = pid or os.getpid()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found[int(entry.name)] = fields[0]
    return found


def workers(pid: int | None = None) -> dict[int, str]:
    """The pool's worker processes among the children (not multiprocessing's tracker)."""
    result = {}
    for child, state in children(pid).items():
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline or state == "Z":
            result[child] = state
    return result


def zombies() -> list[int]:
    return [pid for pid, state in children().items() if state == "Z"]


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
