"""Local-source reconcile of a small-file tree, beside ``rsync -a`` on the same tree.

    python -m bench.foundation --files 20000 --runs 3

Measures the first reconcile (copy, hash, index, build entries), a no-op
reconcile, and ``rsync -a`` doing the same copy and the same no-op.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.trees import make_tree


def _controller(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "controller", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout) if "--json" in args else {}


def _timed(func) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _drop_caches_hint() -> None:
    os.sync()


def run(files: int, runs: int) -> dict[str, object]:
    results: dict[str, list[float]] = {
        "first": [],
        "noop": [],
        "rsync_first": [],
        "rsync_noop": [],
        "first_rss_mb": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        source = work / "source"
        make_tree(source, files)
        for i in range(runs):
            data = work / f"data-{i}"
            env = {**os.environ, "CONTROLLER_DATA_DIR": str(data)}
            env.pop("CONTROLLER_DATABASE_URL", None)
            _controller(env, "blog", "add", "bench", "--source", f"local:{source}")
            _drop_caches_hint()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            results["first"].append(
                _timed(lambda env=env: _controller(env, "reconcile", "--blog", "bench", "--json"))
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            results["first_rss_mb"].append(max(after, before) / 1024)
            results["noop"].append(
                _timed(lambda env=env: _controller(env, "reconcile", "--blog", "bench", "--json"))
            )
            target = work / f"rsync-{i}"
            _drop_caches_hint()
            results["rsync_first"].append(
                _timed(
                    lambda target=target: subprocess.run(
                        ["rsync", "-a", f"{source}/", f"{target}/"], check=True
                    )
                )
            )
            results["rsync_noop"].append(
                _timed(
                    lambda target=target: subprocess.run(
                        ["rsync", "-a", f"{source}/", f"{target}/"], check=True
                    )
                )
            )
            blog = data / "blogs" / "bench"
            diff = subprocess.run(["diff", "-rq", str(source), str(blog)], capture_output=True)
            if diff.returncode != 0:
                raise SystemExit(f"benchmark tree did not converge:\n{diff.stdout.decode()[:2000]}")
            shutil.rmtree(data)
            shutil.rmtree(target)
    summary = {
        name: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for name, v in results.items()
    }
    return {
        "files": files,
        "runs": runs,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        **summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.files, args.runs), indent=2))


if __name__ == "__main__":
    main()
