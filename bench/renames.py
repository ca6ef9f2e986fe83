"""Rename inference at scale: 100,000 moves with hashes, and the adversarial case.

    python -m bench.renames [--files 100000] [--runs 5]

Pure CPU work on one core: no disk, no store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc

from reconcilers.core.renames import infer_moves
from reconcilers.core.tree import Kind, Node


def _hashed(files: int) -> tuple[list[Node], list[Node]]:
    """``files`` files in 1,000 folders; every folder renamed, 1 file in 10 moved elsewhere."""
    removed, added = [], []
    for d in range(files // 100):
        removed.append(Node(f"old/d{d}", Kind.DIR))
        added.append(Node(f"new/d{d}", Kind.DIR))
    for i in range(files):
        digest = f"{i:064x}"
        folder = i // 100
        removed.append(Node(f"old/d{folder}/f{i}.md", Kind.FILE, 1000 + i % 3000, 0, digest))
        target = (
            f"new/d{folder}/f{i}.md" if i % 10 else f"new/d{(folder + 7) % (files // 100)}/g{i}.md"
        )
        added.append(Node(target, Kind.FILE, 1000 + i % 3000, 0, digest))
    return removed, added


def _adversarial(files: int) -> tuple[list[Node], list[Node]]:
    """Equal sizes, no hash, no id: only names and times can pair them."""
    removed = [
        Node(f"a/f{i}.bin", Kind.FILE, 4096, 1_700_000_000_000_000_000 + i) for i in range(files)
    ]
    added = [
        Node(f"b/f{i}.bin", Kind.FILE, 4096, 1_700_000_000_000_000_000 + i) for i in range(files)
    ]
    return removed, added


def _measure(
    case: str, removed: list[Node], added: list[Node], runs: int, order: bool
) -> dict[str, object]:
    times, moves = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = infer_moves(removed, added, (), order=order)
        times.append(time.perf_counter() - start)
        moves = len(result.moves)
    tracemalloc.start()
    infer_moves(removed, added, (), order=order)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "case": case,
        "order": order,
        "inputs": len(removed) + len(added),
        "moves": moves,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "peak_traced_mb": peak / 2**20,
    }


def run(files: int, runs: int) -> dict[str, object]:
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": [
            _measure(case, *make(files), runs, order)
            for case, make in (("hashed", _hashed), ("adversarial", _adversarial))
            for order in (False, True)
        ],
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.files, args.runs), indent=2))


if __name__ == "__main__":
    main()
