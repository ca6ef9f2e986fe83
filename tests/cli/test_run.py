"""``controller run`` and the lease-aware ``controller reconcile``, as real processes.

Each test has its own ``CONTROLLER_DATA_DIR`` (a private SQLite store) and the
sample blog copied into ``tmp_path``. Waits poll with deadlines; the two
behaviour bounds the issue states (an edit reaches the blog folder within
1 s, SIGTERM ends the daemon within 25 s) are measured and asserted.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pytest
from support import CONTROLLER, Cli, controller_env, wait_until
from test_cli import Sample

from controller.store import BlogRecord, Store

REPO = Path(__file__).resolve().parents[2]
POST = "posts/2024/05/01/hello-world.md"

HOLD = """
import sys
import controller

with controller.sync(sys.argv[1], wait=10) as folder:
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(controller_env(tmp_path))


class LocalSample(Sample):
    """The sample blog, registered through the store in this process.

    ``controller blog add`` has its own tests; skipping its process start keeps
    these tests' time for the commands they are about.
    """

    def add(self) -> None:
        store = Store(f"sqlite:///{database(self.cli)}", auto_upgrade=True)
        try:
            store.add_blog(
                BlogRecord(
                    id=self.blog,
                    source_kind="local",
                    source_config={"location": str(self.src.resolve())},
                    folder=str(self.folder.resolve()),
                )
            )
        finally:
            store.close()


@pytest.fixture
def sample(cli: Cli, tmp_path: Path) -> Sample:
    return LocalSample(cli, tmp_path)


def database(cli: Cli) -> Path:
    return Path(cli.env["CONTROLLER_DATA_DIR"]) / "controller.db"


def blog_row(cli: Cli, blog: str) -> dict[str, Any]:
    """The blog's row, read straight from the store (cheap enough to poll)."""
    with sqlite3.connect(database(cli), timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM blogs WHERE id = ?", (blog,)).fetchone()
    assert row is not None
    return dict(row)


def caught_up(cli: Cli, blog: str) -> bool:
    """A pass started from the latest trigger and completed."""
    row = blog_row(cli, blog)
    return bool(row["pass_generation"] == row["generation"] and row["last_pass_result"] == "ok")


def listed(cli: Cli, blog: str) -> dict[str, Any]:
    """The blog as ``controller blog list --json`` shows it."""
    [item] = [b for b in cli.json("blog", "list") if b["id"] == blog]
    assert isinstance(item, dict)
    return item


def lease_holder(cli: Cli, blog: str) -> str | None:
    with sqlite3.connect(database(cli), timeout=30) as conn:
        row = conn.execute(
            "SELECT holder, expires_at_ns FROM leases WHERE blog_id = ?", (blog,)
        ).fetchone()
    if row is None or row[0] is None or row[1] <= time.time_ns():
        return None
    return str(row[0])


class Daemon:
    """A ``controller run`` process; stderr goes to a file (never a full pipe)."""

    def __init__(self, cli: Cli, root: Path, *args: str) -> None:
        self.stderr_path = root / f"run-{time.monotonic_ns()}.err"
        self._stderr: IO[str] = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [str(CONTROLLER), *args],
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            text=True,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_running(self) -> None:
        wait_until(
            lambda: "controller running" in self.stderr or self.proc.poll() is not None,
            30,
            "the daemon's start",
        )
        assert self.proc.poll() is None, f"controller run exited early:\n{self.stderr}"

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stderr.close()


@pytest.fixture
def start(cli: Cli, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def run(*args: str) -> Daemon:
        daemon = Daemon(cli, tmp_path, *args)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        daemon.close()


# -- help ---------------------------------------------------------------------------------------


def test_run_help_explains_the_loop_its_options_and_signals(cli: Cli) -> None:
    text = " ".join(cli.run("run", "--help").stdout.split())
    assert text.startswith("Usage: controller run [OPTIONS]")
    assert "Run the control loop until SIGTERM or SIGINT." in text
    for option in ("--workers", "--poll", "--resync", "--no-watch"):
        assert option in text
    assert "controller reconcile --enqueue" in text
    assert "a blog is never run by two at once" in text
    assert "releases its leases and exits 0; a second signal exits at once" in text


# -- the daemon on the sample blog ------------------------------------------------------------


def test_run_reacts_to_an_edit_within_a_second_and_to_sigterm_with_exit_0(
    sample: Sample, start: Callable[..., Daemon]
) -> None:
    daemon = start("-v", "--log-format", "json", "run")
    daemon.wait_running()
    wait_until(
        lambda: blog_row(sample.cli, "demo")["last_pass_result"] == "ok", 30, "the first pass"
    )
    installed = sample.folder / POST
    source = sample.src / POST
    edited = source.read_text().replace("Title: Hello, world", "Title: Hello from the daemon")
    assert edited != source.read_text()

    written = time.monotonic()
    source.write_text(edited)
    wait_until(lambda: installed.read_text() == edited, 10, "the edit in the blog folder")
    took = time.monotonic() - written
    assert took < 1.0, f"the blog folder had the edit after {took:.2f} s"
    wait_until(lambda: caught_up(sample.cli, "demo"), 10, "the pass the edit triggered")

    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    status = daemon.wait(30)
    stopped = time.monotonic() - signalled
    assert status == 0, daemon.stderr
    assert stopped < 25.0
    assert "controller stopped" in daemon.stderr
    assert "some passes were still running" not in daemon.stderr

    logs = daemon.log_lines()
    acquired = [(r["blog"], r["token"]) for r in logs if r["message"] == "lease acquired"]
    released = [(r["blog"], r["token"]) for r in logs if r["message"] == "lease released"]
    assert len(acquired) >= 2 and sorted(acquired) == sorted(released)
    assert lease_holder(sample.cli, "demo") is None
    report = sample.reconcile("--wait", "0")
    assert report["actions"] == {"set": 0, "move": 0, "drop": 0}


def test_a_second_signal_while_draining_exits_at_once(
    sample: Sample, start: Callable[..., Daemon]
) -> None:
    # A write lock on the store keeps the daemon's first pass waiting (SQLite's
    # busy timeout), so after the first SIGTERM the daemon is still draining.
    lock = sqlite3.connect(database(sample.cli), isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        daemon = start("run", "--no-watch")
        daemon.wait_running()
        time.sleep(1.5)  # the first poll hands the due blog to a worker, which blocks
        daemon.signal(signal.SIGTERM)
        time.sleep(1.0)
        assert daemon.proc.poll() is None, "not draining: the test proves nothing"
        signalled = time.monotonic()
        daemon.signal(signal.SIGINT)
        status = daemon.wait(10)
        took = time.monotonic() - signalled
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert status != 0
    # The drain alone would last the 25 s grace (the store stays locked).
    assert took < 3.0, f"the second signal took {took:.2f} s"


def test_an_enqueued_trigger_reaches_a_running_daemon(
    sample: Sample, start: Callable[..., Daemon]
) -> None:
    daemon = start("run", "--no-watch", "--poll", "0.2")
    daemon.wait_running()
    wait_until(
        lambda: blog_row(sample.cli, "demo")["last_pass_result"] == "ok", 30, "the first pass"
    )
    before = listed(sample.cli, "demo")
    assert before["pass_generation"] == before["generation"]
    (sample.src / "pages" / "contact.html").write_text("<h1>Contact</h1>\n")

    enqueued = sample.cli.json("reconcile", "--blog", "demo", "--enqueue")
    assert enqueued == {"blog": "demo", "enqueued": True, "generation": before["generation"] + 1}

    wait_until(
        lambda: blog_row(sample.cli, "demo")["pass_generation"] == enqueued["generation"],
        15,
        "the daemon's pass",
    )
    after = listed(sample.cli, "demo")
    assert after["generation"] == enqueued["generation"]
    assert after["last_pass_result"] == "ok" and after["last_pass_at"] != before["last_pass_at"]
    assert (sample.folder / "pages" / "contact.html").read_text() == "<h1>Contact</h1>\n"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0


# -- reconcile when another process holds the blog ---------------------------------------------


@pytest.fixture
def holder(sample: Sample) -> Iterator[subprocess.Popen[str]]:
    """A process inside ``controller.sync("demo")`` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, "demo"],
        env=sample.cli.env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        pytest.fail(f"the holder did not get the blog: {line!r} {proc.communicate()[1]}")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_reconcile_exits_3_when_the_blog_stays_busy_and_enqueue_returns_at_once(
    sample: Sample, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    proc = sample.cli.run("reconcile", "--blog", "demo", "--wait", "0.5", ok=False)
    took = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert took >= 0.5
    [line] = proc.stderr.strip().splitlines()
    prefix = f"error: blog demo is busy (held by {socket.gethostname()}:{holder.pid} since "
    assert line.startswith(prefix), line
    assert line.endswith(")")
    since = datetime.fromisoformat(line.removeprefix(prefix).removesuffix(")"))
    assert abs(since.timestamp() - time.time()) < 60
    assert not sample.folder.exists() or not any(sample.folder.rglob("*"))

    started = time.monotonic()
    enqueued = sample.cli.json("reconcile", "--blog", "demo", "--enqueue")
    took = time.monotonic() - started
    assert enqueued == {"blog": "demo", "enqueued": True, "generation": 1}
    # It returned while the blog stayed held: it never waited for the lease (the
    # default --wait is 60 s); the bound leaves room for a loaded machine's start-up.
    assert took < 30.0
    assert holder.poll() is None
    row = blog_row(sample.cli, "demo")
    assert row["generation"] == 1 and row["pass_generation"] == 0  # due for the daemon
    assert row["last_pass_at"] is None

    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(10) == 0
