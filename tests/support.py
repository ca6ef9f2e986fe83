"""Helpers several test folders share: a clean environment for real processes,
and emptying a PostgreSQL store between tests."""

from __future__ import annotations

import os
from pathlib import Path

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
                text("TRUNCATE blogs, remote_nodes, synced_nodes, entries, history, leases CASCADE")
            )
    engine.dispose()
