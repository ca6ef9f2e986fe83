"""S2c and S4: a converged blog under ``controller run``, and one edit at a time.

    python -m bench.daemon --files 100000 --edits 5

The daemon runs as a real process with JSON logs. For a local source (S2c,
S4 local) the bench measures how much CPU the daemon spends while nothing
changes, then edits one file of the source at a time and times the change
until the daemon logs the pass that synced it (the store row is written
before that line). The CPU the daemon spent on each edit's pass, beside the
CPU of a plain stat walk of the same tree, says whether the watched pass
walked the tree: S2c's target is that it does not. For Dropbox (S4 webhook)
the edit is a put into the fake and a signed webhook to the daemon's HTTP
listener; one download round trip, timed on its own, is taken away.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profiles
from bench.runner import Result

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
#: How long the daemon is left alone to show what it costs when nothing happens.
IDLE_S = 3.0


@dataclass
class Daemon:
    """One ``controller run`` process and its JSON log."""

    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, controller: str, env: dict[str, str], logs: Path, *args: str) -> Daemon:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "daemon.log"
        with open(log, "wb") as err:
            popen = subprocess.Popen(
                [controller, "--log-format", "json", "-v", "run", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        daemon = cls(popen, log)
        daemon.wait_for(lambda line: line.get("message") == "daemon started", 30)
        daemon.settle()
        return daemon

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:  # a line still being written
                    continue
        return out

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, skip: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """The first log line after the first ``skip`` that ``match`` accepts, and its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            for i in range(skip, len(lines)):
                if match(lines[i]):
                    return i, lines[i]
            if self.popen.poll() is not None:
                break
            time.sleep(0.001)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise AssertionError(
            f"controller run: expected log line not seen (exit {self.popen.poll()}):\n{tail}"
        )

    def cpu_seconds(self) -> float:
        """User + system CPU of the daemon so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK

    def settle(self, quiet: float = 0.5, timeout: float = 60) -> None:
        """Wait until the daemon stops using CPU (watches set up, start-up passes done)."""
        deadline = time.monotonic() + timeout
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.cpu_seconds()
            if now - last < 0.02:
                return
            last = now

    def idle_cpu(self, seconds: float = IDLE_S) -> float:
        before = self.cpu_seconds()
        time.sleep(seconds)
        return self.cpu_seconds() - before

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise AssertionError("controller run did not stop within 30 s of SIGTERM") from None
        if code != 0:
            raise AssertionError(f"controller run exited {code} after SIGTERM")


def _synced_one(line: dict[str, Any]) -> bool:
    return line.get("message") == "reconciled" and line.get("set", 0) >= 1


def edit_and_wait(
    daemon: Daemon, edit: Callable[[], None], rows: dict[str, Result], timeout: float = 60
) -> None:
    """Apply ``edit``; time it until the daemon logs the pass that synced it."""
    skip = len(daemon.lines())
    cpu = daemon.cpu_seconds()
    start = time.perf_counter()
    edit()
    _, line = daemon.wait_for(_synced_one, timeout, skip)
    rows["latency"].samples.append(time.perf_counter() - start)
    rows["pass"].samples.append(float(line["seconds"]))
    rows["cpu"].samples.append(daemon.cpu_seconds() - cpu)
    rows["scoped"].samples.append(1.0 if line.get("scoped") else 0.0)


def edits(daemon: Daemon, changes: list[Callable[[], None]], rows: dict[str, Result]) -> None:
    """Time every change but the last; the last runs under py-spy for the profile."""
    rows["idle"].samples.append(daemon.idle_cpu())
    for i, change in enumerate(changes):
        spy = profiles.Attached(daemon.popen.pid) if i == len(changes) - 1 else None
        edit_and_wait(daemon, change, rows if spy is None else edit_rows())
        daemon.settle(quiet=0.2)
        if spy is not None:
            rows["latency"].note = "; ".join(spy.stop())


def edit_rows() -> dict[str, Result]:
    return {
        "latency": Result("change → synced"),
        "pass": Result("the pass (its logged `seconds`)"),
        "cpu": Result("daemon CPU for the edit"),
        "idle": Result(f"daemon CPU over {IDLE_S:g} s with nothing changing"),
        "scoped": Result("1 when the pass re-observed only the edit (its log says so)"),
    }


def local_edits(
    controller: str, env: dict[str, str], source: Path, logs: Path, count: int
) -> dict[str, Result]:
    """S2c and S4 (local): ``count`` one-file edits of ``source`` under a watching daemon."""
    posts = sorted(source.rglob("*.md"))[: count + 1]
    scratch = source.parent / "bench-edit.tmp"  # outside the watched tree, same file system
    rows = edit_rows()
    changes = [_edit(path, i, scratch) for i, path in enumerate(posts)]
    daemon = Daemon.start(controller, env, logs)
    try:
        edits(daemon, changes, rows)
    finally:
        daemon.stop()
    return rows


def _edit(path: Path, i: int, scratch: Path) -> Callable[[], None]:
    """Save as editors do: write elsewhere, then rename over the file in one step."""

    def save() -> None:
        scratch.write_bytes(path.read_bytes() + f"\n\nedit {i}\n".encode())
        os.replace(scratch, path)

    return save
