"""S3 at 1M files (issue 9): the peak memory of a no-op full validation, measured apart.

    python -m bench.memory --files 1000000 --out bench/results/s3-1m.json

``make bench`` has no room for it on this 2-core machine: the tree alone takes
over a minute to write, a real first sync of 1M files about 5 minutes, and the
full validation itself about a minute. So this is its own command,
run once, and ``make bench`` renders the result file it leaves (with its date)
in docs/benchmarks.md beside the 100k figures of the same scenario.

The converged blog comes from one real ``Reconciler.reconcile`` pass, with one
step changed: the executor hard-links each source file into the blog folder
instead of copying it (:class:`_Links`). Listing, planning, directory creation,
recording and settling are the controller's own, so the store holds what a
first sync writes; the folder holds the same names, sizes and mtimes (the
links share the source's inodes, which the store records as the local stat, as
it would a copy's). Entry builds are off (a link has no bytes to hand a build),
so unlike the 100k S3 blog this store holds no entries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import profiles
from bench.local import BLOG, CONTROLLER, add_blog, blog_folder, controller, controller_env, rsync
from bench.seed import same_rows, store_rows
from bench.trees import make_tree
from reconcilers.core.tree import Node, parent_of
from reconcilers.executor import Executor
from reconcilers.outcomes import FetchFailed, Installed, LocalStat, Outcome

#: Where ``make bench`` looks for the last result of this command.
RESULT = Path(__file__).resolve().parent / "results" / "s3-1m.json"
#: tracemalloc slows a pass several times over; where the memory goes is the
#: same per file at 100k as at 1M.
PROFILE_FILES = 100_000


class _Links(Executor):
    """The real executor, except that a file is hard-linked from the source, not copied."""

    def install(self, nodes: list[Node]) -> list[Outcome]:
        root = str(self.source.root)  # type: ignore[attr-defined]  # a LocalSource
        outcomes: list[Outcome] = []
        for node in nodes:
            self.checkpoint()
            target = self._path(node.path)
            try:
                self._check_dir(parent_of(node.path))
                os.link(os.path.join(root, node.path), target)
                st = os.lstat(target)
            except OSError as exc:
                outcomes.append(FetchFailed(node, f"cannot link: {exc.strerror}"))
                continue
            outcomes.append(Installed(node, LocalStat(st.st_ino, st.st_size, st.st_mtime_ns), None))
        return outcomes


def _settings(data: Path) -> Any:
    """The settings ``controller_env(data, builds=False)`` gives a process, for this one."""
    from controller.settings import Settings

    builders = json.loads(controller_env(data, builds=False)["CONTROLLER_BUILDERS"])
    return Settings(data_dir=data, database_url=None, builders=builders)


def _in_process(data: Path, **kwargs: Any) -> Any:
    """One real pass over the blog at ``data`` in this process (builds off); its report."""
    import controller.reconcile as reconcile
    from controller.store import Store

    settings = _settings(data)
    store = Store(settings.effective_database_url)
    reconciler = reconcile.Reconciler(store, settings)
    try:
        return reconciler.reconcile(BLOG, **kwargs)
    finally:
        reconciler.close()
        store.close()


def seed(data: Path, source: Path) -> float:
    """Converge the blog at ``data`` on ``source`` by one linking pass; its seconds."""
    import controller.reconcile as reconcile

    add_blog(data, source, builds=False)
    real, reconcile.Executor = reconcile.Executor, _Links  # type: ignore[misc]
    try:
        start = time.perf_counter()
        report = _in_process(data)
        seconds = time.perf_counter() - start
    finally:
        reconcile.Executor = real  # type: ignore[misc]
    if report.errors or report.actions["set"] == 0:
        raise AssertionError(f"the seeding pass did not install the tree: {report.as_json()}")
    return seconds


def allocations(work: Path, files: int, n: int = 5) -> list[str]:
    """The largest allocation sites of a full validation when it plans (its trees all
    loaded), by tracemalloc in this process, on a seeded blog of ``files`` files."""
    import tracemalloc

    import controller.reconcile as reconcile

    source, data = work / "source", work / "data"
    make_tree(source, files)
    seed(data, source)
    snapshots: list[tracemalloc.Snapshot] = []
    real = reconcile.plan

    def planning(*args: Any, **kwargs: Any) -> Any:
        if not snapshots:
            snapshots.append(tracemalloc.take_snapshot())
        return real(*args, **kwargs)

    reconcile.plan = planning  # type: ignore[assignment]
    tracemalloc.start()
    try:
        _in_process(data, full=True)
    finally:
        tracemalloc.stop()
        reconcile.plan = real  # type: ignore[assignment]
    stats = snapshots[0].statistics("lineno")
    total = sum(s.size for s in stats)
    return [
        f"`{profiles.short(s.traceback[0].filename)}:{s.traceback[0].lineno}` "
        f"{s.size / 2**20:.0f} MB ({s.size / total:.0%})"
        for s in stats[:n]
    ]


def _shape(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (-1 for a folder): cheap to compare at 1M."""
    out: dict[str, int] = {}
    base = len(str(root)) + 1
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.join(directory, name)[base:]] = -1
        for name in files:
            path = os.path.join(directory, name)
            out[path[base:]] = os.lstat(path).st_size
    return out


def check(work: Path, files: int = 300) -> int:
    """A real first sync and the linking seed of the same tree leave equal store rows.

    The comparison of ``bench.seed`` (every remote and synced column but the
    local inode, the blog's sync state, entries, history); returns the rows.
    """
    from controller.store import Store

    source = work / "source"
    make_tree(source, files)
    real, seeded = work / "real", work / "seeded"
    controller(add_blog(real, source, builds=False), "reconcile", "--blog", BLOG, "--json")
    seed(seeded, source)
    rows = []
    for data in (real, seeded):
        store = Store(_settings(data).effective_database_url)
        try:
            rows.append(store_rows(store.engine, BLOG))
        finally:
            store.close()
    same_rows(*rows)
    if _shape(blog_folder(real)) != _shape(blog_folder(seeded)):
        raise AssertionError("the seeded blog folder differs from a real first sync's")
    return len(rows[0]["synced_nodes"])


def run(work: Path, files: int, runs: int) -> dict[str, Any]:
    checked = check(work / "check")
    source, data = work / "source", work / "data"
    start = time.perf_counter()
    make_tree(source, files)
    tree_s = time.perf_counter() - start
    seed_s = seed(data, source)
    if _shape(source) != _shape(blog_folder(data)):
        raise AssertionError("the seeded blog folder differs from the source")
    env = controller_env(data, builds=False)
    samples, rss = [], []
    for _ in range(runs):
        proc, report = controller(env, "reconcile", "--blog", BLOG, "--full", "--json")
        actions = report.get("actions")
        if not isinstance(actions, dict) or any(actions.values()) or report.get("errors"):
            raise AssertionError(f"a full validation of the seeded blog acted: {report}")
        samples.append(float(report["seconds"]))  # type: ignore[arg-type]
        rss.append(proc.rss_mb)
    peer = rsync("-an", "--delete", f"{source}/", f"{blog_folder(data)}/")
    top = allocations(work / "traced", min(files, PROFILE_FILES))
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "files": files,
        "runs": runs,
        "checked_rows": checked,
        "tree_s": tree_s,
        "seed_s": seed_s,
        "pass_s": samples,
        "peak_rss_mb": rss,
        "rsync_s": peer.seconds,
        "rsync_rss_mb": peer.rss_mb,
        "traced_files": min(files, PROFILE_FILES),
        "top_allocations": top,
        "command": f"python -m bench.memory --files {files} --runs {runs}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument(
        "--runs", type=int, default=1, help="full validations (about a minute each at 1M)"
    )
    parser.add_argument(
        "--out", type=Path, help=f"write the result here (make bench reads {RESULT})"
    )
    args = parser.parse_args()
    if not os.access(CONTROLLER, os.X_OK):
        sys.exit(f"no controller at {CONTROLLER}: run `make compile` first")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        result = run(Path(tmp), args.files, args.runs)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
