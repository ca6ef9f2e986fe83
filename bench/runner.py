"""Shared measuring and formatting for every scenario.

Each scenario repeats a step N times and reports median, min and max, because
single timings on a shared 2-core machine swing by 2x. Processes are measured
from outside (``/usr/bin/time -v`` when installed) so peak RSS is the child's
own, not the benchmark driver's.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
_MAXRSS = re.compile(rb"Maximum resident set size \(kbytes\): (\d+)")


@dataclass
class Result:
    """One measured row: samples in ``unit`` (seconds by default), optional peak RSS."""

    name: str
    samples: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    unit: str = "s"
    note: str = ""

    def add(self, run: Run) -> None:
        """One process run: its wall time and peak RSS."""
        self.samples.append(run.seconds)
        self.rss_mb.append(run.rss_mb)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def peak_rss_mb(self) -> float | None:
        return max(self.rss_mb) if self.rss_mb else None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": len(self.samples),
            "peak_rss_mb": self.peak_rss_mb,
            "note": self.note,
        }


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def repeat(name: str, func: Callable[[], object], runs: int = 5) -> Result:
    """Run ``func`` ``runs`` times; the result holds every wall time."""
    result = Result(name)
    for _ in range(runs):
        result.samples.append(timed(func))
    return result


@dataclass
class Run:
    """One child process: wall seconds, peak RSS (MB) and its stdout."""

    seconds: float
    rss_mb: float
    stdout: str


def run_process(
    cmd: Sequence[str], env: dict[str, str] | None = None, *, check: bool = True
) -> Run:
    """Run ``cmd`` to completion, measuring its wall time and peak RSS.

    With ``/usr/bin/time -v`` the RSS is the command's own. Without it, the
    command runs under a fresh Python whose ``RUSAGE_CHILDREN`` starts at zero,
    so the figure is still this command's alone (not the max of all earlier
    children of this process, which is what ``getrusage`` here would give).
    """
    if TIME:
        full = [TIME, "-v", *cmd]
    else:
        probe = (
            "import resource,subprocess,sys;"
            "r=subprocess.run(sys.argv[1:]);"
            "sys.stderr.write('Maximum resident set size (kbytes): %d\\n'"
            "%resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
            "sys.exit(r.returncode)"
        )
        full = [sys.executable, "-c", probe, *cmd]
    start = time.perf_counter()
    out = subprocess.run(full, env=env, capture_output=True)
    seconds = time.perf_counter() - start
    if check and out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr.decode(errors='replace')[-3000:]}"
        )
    match = _MAXRSS.search(out.stderr)
    rss = int(match.group(1)) / 1024 if match else float("nan")
    return Run(seconds, rss, out.stdout.decode(errors="replace"))


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_diff(a: Path, b: Path) -> str:
    """'' when the two folders hold the same names and bytes (``diff -rq``)."""
    out = subprocess.run(["diff", "-rq", str(a), str(b)], capture_output=True, text=True)
    return "" if out.returncode == 0 else (out.stdout + out.stderr)[:2000] or "differs"


def require_converged(a: Path, b: Path, who: str) -> None:
    diff = tree_diff(a, b)
    if diff:
        raise AssertionError(f"{who}: {b} did not converge to {a}:\n{diff}")


# -- formatting (docs/benchmarks.md and the CLI share these) ---------------------------


def fmt(result: Result | None, unit: str | None = None, digits: int = 2) -> str:
    """``median unit (min–max)``, or ``n/a`` for a row that was not measured."""
    if result is None or not result.samples:
        return "n/a"
    u = unit or result.unit
    return f"{result.median:.{digits}f} {u} ({result.min:.{digits}f}–{result.max:.{digits}f})"


def fmt_rate(count: int, result: Result | None) -> str:
    if result is None or not result.samples:
        return "n/a"
    return f"{count / result.median:,.0f}/s"


def ratio(a: Result | None, b: Result | None) -> float | None:
    if a is None or b is None or not a.samples or not b.samples or b.median == 0:
        return None
    return a.median / b.median


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def verdict(ok: bool | None) -> str:
    """The target column's mark: met, **missed**, or not measurable here."""
    if ok is None:
        return "n/a"
    return "met" if ok else "**missed**"
