"""Helpers several test folders share: a clean environment for real processes,
emptying a PostgreSQL store between tests, reading a folder, waiting for a condition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def controller_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a real ``controller`` process: no CONTROLLER_* of ours leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLLER_")}
    env.update(
        CONTROLLER_DATA_DIR=str(tmp_path / "data"),
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        **extra,
    )
    return env


def truncate_store(url: str) -> None:
    """Empty every table of a migrated store (a no-op before the first migration)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        if conn.execute(text("SELECT to_regclass('blogs')")).scalar():
            conn.execute(
                text(
                    "TRUNCATE blogs, remote_nodes, synced_nodes, entries, history, leases, dropbox_accounts CASCADE"
                )
            )
    engine.dispose()


def tree(root: Path) -> dict[str, bytes | None]:
    """Relative path (``/``-separated) -> bytes, None for directories."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> float:
    """Poll ``predicate`` until it is true; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)
    return time.monotonic() - started
