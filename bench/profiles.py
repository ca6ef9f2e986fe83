"""Where a missed target's time goes: the top costs in our own code.

The issue asks that every missed target name its top costs. Process
scenarios are sampled from outside with py-spy (all threads, no code
changes, the controller runs as users run it); in-process ones (S2a) with
cProfile. Both reduce to the same table: our functions (controller/,
reconcilers/) by inclusive share of the samples, leaving out the pass's own
skeleton and anything above 90%, which sit on the path to every cost and
name none.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

#: Frames on the path to every cost of a pass (and the CLI around it).
SKELETON = {
    "reconcile",
    "Reconciler.reconcile",
    "Reconciler._pass",
    "Reconciler._run",
    "_pass",
    "_run",
    "main",
    "<module>",
    "run",
    "Daemon._work",
    "Daemon._process",
}
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
#: 250 samples a second, only threads holding the GIL: a thread waiting on a
#: socket, a lock or a child process costs nothing and must not rank.
RECORD = [PY_SPY, "record", "-r", "250", "--gil", "-f", "raw"]


#: Off unless ``python -m bench`` turns it on: the smoke tests check the
#: scenarios, and sampling each of them again would only slow the suite down.
enabled = False


def available() -> bool:
    return enabled and os.access(PY_SPY, os.X_OK)


def short(path: str) -> str:
    """``controller/x.py`` for our files, the file's name for anything else."""
    return _ours(path) or Path(path).name


def _ours(path: str) -> str | None:
    """``controller/x.py`` for our own files; None for the standard library and packages."""
    parts = Path(path).parts
    if ".venv" in parts or "site-packages" in parts:
        return None
    for root in ("controller", "reconcilers"):
        if root in parts:
            return "/".join(parts[parts.index(root) :])
    return None


def top(weights: Iterable[tuple[Sequence[tuple[str, str]], float]], n: int = 4) -> list[str]:
    """Our top ``n`` functions by inclusive share, then the two leaves (any code) by self share.

    ``weights``: sampled stacks of (function, file), root first, with their weight.
    """
    inclusive: defaultdict[tuple[str, str], float] = defaultdict(float)
    leaves: defaultdict[tuple[str, str], float] = defaultdict(float)
    total = 0.0
    for stack, weight in weights:
        total += weight
        leaves[stack[-1]] += weight
        for frame in set(stack):
            inclusive[frame] += weight
    own = [
        f"`{Path(path).name}` {func}() {weight / total:.0%} self"
        for (func, path), weight in _heaviest(leaves)
        if func
    ][:2]
    return rank(inclusive, total, n) + own


def _heaviest(weights: Mapping[tuple[str, str], float]) -> list[tuple[tuple[str, str], float]]:
    return sorted(weights.items(), key=lambda item: -item[1])


def rank(inclusive: Mapping[tuple[str, str], float], total: float, n: int = 4) -> list[str]:
    """Our functions by inclusive time, as shares of ``total``."""
    rows = []
    for (func, path), weight in _heaviest(inclusive):
        where = _ours(path)
        if where is None or func in SKELETON or "<" in func or weight >= 0.9 * total:
            continue
        rows.append(f"`{where}` {func}() {weight / total:.0%}")
        if len(rows) == n:
            break
    return rows


def _raw_stacks(text: str) -> Iterable[tuple[list[tuple[str, str]], float]]:
    """py-spy's raw (collapsed) format: ``frame;frame;... count``, frame ``func (file:line)``."""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = []
        for frame in stack.split(";"):
            func, _, where = frame.rpartition(" (")
            frames.append((func, where.rsplit(":", 1)[0]))
        yield frames, float(count)


def spy_command(cmd: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """Run ``cmd`` once under py-spy; its top costs (empty when py-spy cannot run here)."""
    if not available():
        return []
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        done = subprocess.run(
            [*RECORD, "-o", out.name, "--", *cmd],
            env=env,
            capture_output=True,
        )
        if done.returncode != 0:
            return []
        return top(_raw_stacks(Path(out.name).read_text()))


class Attached:
    """py-spy attached to a running process until :meth:`stop` (the daemon's edits)."""

    def __init__(self, pid: int) -> None:
        self.out = Path(tempfile.mkstemp(suffix=".txt")[1])
        self.proc = (
            subprocess.Popen(
                [*RECORD, "-o", str(self.out), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if available()
            else None
        )

    def stop(self) -> list[str]:
        try:
            if self.proc is None:
                return []
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
            return top(_raw_stacks(self.out.read_text()))
        finally:
            self.out.unlink(missing_ok=True)


def cprofile(func: Callable[[], object]) -> list[str]:
    """Run ``func`` in this process under cProfile; its top costs (cumulative time)."""
    if not enabled:
        return []
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(func)
    stats = pstats.Stats(prof)
    inclusive: defaultdict[tuple[str, str], float] = defaultdict(float)
    for (path, _line, name), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        inclusive[(name, path)] += cum
    return rank(inclusive, stats.total_tt or 1e-9)  # type: ignore[attr-defined]
