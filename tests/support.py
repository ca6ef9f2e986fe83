"""Helpers several test folders share: a clean environment for real processes and
the ``controller`` executable, emptying a PostgreSQL store between tests,
reading a folder, waiting for a condition."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
            tables = (
                "blogs, remote_nodes, synced_nodes, entries, history, leases,"
                " dropbox_accounts, retry_requests"
            )
            conn.execute(text(f"TRUNCATE {tables} CASCADE"))
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


CONTROLLER = Path(sys.executable).with_name("controller")
if not CONTROLLER.exists():  # a virtualenv without the script beside its python
    CONTROLLER = Path(shutil.which("controller") or "controller")


class Cli:
    """The ``controller`` executable with a private environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self,
        *args: str,
        ok: bool = True,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*(command or [str(CONTROLLER)]), *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, f"controller {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str) -> str:
        """Run a command that must fail; return its one-line stderr message."""
        proc = self.run(*args, ok=False)
        assert proc.returncode != 0, f"controller {' '.join(args)} succeeded:\n{proc.stdout}"
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
        return lines[0]


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free loopback port, for real HTTP clients."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the server to start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def free_port() -> int:
    """A loopback port nothing listens on now (for a server a test starts as a process)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_answering(url: str, timeout: float, what: str, expect: str | None = None) -> None:
    """Poll ``url`` until it answers 200 (and ``expect`` as its body, when given)."""
    import requests

    def answers() -> bool:
        try:
            answer = requests.get(url, timeout=1)
        except requests.ConnectionError:
            return False
        return answer.status_code == 200 and (expect is None or answer.text == expect)

    wait_until(answers, timeout, what)
