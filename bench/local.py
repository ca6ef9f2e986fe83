"""Local-source scenarios (issue 9: S1, S2b, S3, S5) beside rsync and rclone.

    python -m bench.local --files 100000 --runs 5

The controller runs as a real process (``controller reconcile --blog B --json``,
its own ``CONTROLLER_DATA_DIR``), because that is what a user compares with
``rsync``: process start, imports and store opening are part of the cost.
Every tool works on the same tree in the same run, interleaved run by run so a
noisy neighbour hurts all of them alike. Each step checks that its destination
equals the source and raises if not: a fast wrong answer must not be reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import daemon, profiles
from bench.runner import Result, Run, require_converged, run_process
from bench.trees import make_tree

CONTROLLER = str(Path(sys.executable).with_name("controller"))
BLOG = "bench"
NO_BUILDS = json.dumps({".md": ""})


def controller_env(data: Path, *, builds: bool = True) -> dict[str, str]:
    env = {**os.environ, "CONTROLLER_DATA_DIR": str(data)}
    for name in ("CONTROLLER_DATABASE_URL", "CONTROLLER_BLOGS_DIR", "CONTROLLER_REDIS_URL"):
        env.pop(name, None)
    if builds:
        env.pop("CONTROLLER_BUILDERS", None)
    else:
        env["CONTROLLER_BUILDERS"] = NO_BUILDS
    return env


def controller(env: dict[str, str], *args: str) -> tuple[Run, dict[str, object]]:
    run = run_process([CONTROLLER, *args], env)
    return run, (json.loads(run.stdout) if "--json" in args else {})


def add_blog(data: Path, source: Path, *, builds: bool = True) -> dict[str, str]:
    env = controller_env(data, builds=builds)
    controller(env, "blog", "add", BLOG, "--source", f"local:{source}")
    return env


def blog_folder(data: Path) -> Path:
    return data / "blogs" / BLOG


def rsync(*args: str) -> Run:
    return run_process(["rsync", *args])


def _idle(report: dict[str, object], who: str) -> None:
    actions = report.get("actions")
    if not isinstance(actions, dict) or any(actions.values()):
        raise AssertionError(f"{who}: a converged pass still acted: {report}")


@dataclass
class Tree:
    """A generated source tree and, once converged, a controller blog and an rsync copy."""

    work: Path
    source: Path
    files: int
    data: Path | None = None
    rsync_copy: Path | None = None
    results: dict[str, Result] = field(default_factory=dict)


def prepare(work: Path, files: int) -> Tree:
    source = work / "source"
    make_tree(source, files)
    return Tree(work, source, files)


def _sync_controller(tree: Tree, data: Path, builds: bool) -> Run:
    env = add_blog(data, tree.source, builds=builds)
    run, _ = controller(env, "reconcile", "--blog", BLOG, "--json")
    require_converged(tree.source, blog_folder(data), "controller")
    return run


def _sync_rsync(tree: Tree, target: Path) -> Run:
    run = rsync("-a", f"{tree.source}/", f"{target}/")
    require_converged(tree.source, target, "rsync -a")
    return run


def initial_sync(tree: Tree, runs: int) -> dict[str, Result]:
    """S1: first sync of the whole tree, with entry builds, without, and ``rsync -a``."""
    rows = {
        "builds": Result("controller (copy, index, build entries)"),
        "no_builds": Result("controller without entry builds"),
        "rsync": Result("rsync -a"),
    }
    for i in range(runs):
        last = i == runs - 1
        for key, builds in (("builds", True), ("no_builds", False)):
            data = tree.work / f"data-{key}-{i}"
            run = _sync_controller(tree, data, builds)
            rows[key].add(run)
            if last and builds:
                tree.data = data
            else:
                shutil.rmtree(data)
        target = tree.work / f"rsync-{i}"
        run = _sync_rsync(tree, target)
        rows["rsync"].add(run)
        if last:
            tree.rsync_copy = target
        else:
            shutil.rmtree(target)
    rows["builds"].note = _profile(tree, tree.work / "data-profile")
    return rows


def _profile(tree: Tree, data: Path, *flags: str) -> str:
    """Top costs of one more controller pass, sampled by py-spy (not among the timed runs)."""
    if not profiles.available():
        return ""
    fresh = not data.exists()
    env = add_blog(data, tree.source) if fresh else controller_env(data)
    top = profiles.spy_command([CONTROLLER, "reconcile", "--blog", BLOG, *flags, "--json"], env)
    if fresh:
        shutil.rmtree(data)
    return "; ".join(top)


def converge(tree: Tree) -> None:
    """A converged blog and rsync copy for the no-op scenarios (S1 leaves them)."""
    if tree.data is None:
        tree.data = tree.work / "data-converged"
        _sync_controller(tree, tree.data, True)
    if tree.rsync_copy is None:
        tree.rsync_copy = tree.work / "rsync-converged"
        _sync_rsync(tree, tree.rsync_copy)


def _idle_passes(
    tree: Tree, runs: int, *, what: str, flags: tuple[str, ...], peer: tuple[str, ...]
) -> dict[str, Result]:
    """A pass on a converged blog (nothing to do) beside a peer with nothing to copy."""
    converge(tree)
    assert tree.data is not None and tree.rsync_copy is not None
    env = controller_env(tree.data)
    rows = {
        "controller": Result(f"controller reconcile{''.join(' ' + f for f in flags)} (process)"),
        "in_process": Result("controller pass (in-process `seconds`)"),
        "rsync": Result(f"rsync {' '.join(peer)}"),
    }
    for _ in range(runs):
        run, report = controller(env, "reconcile", "--blog", BLOG, *flags, "--json")
        _idle(report, what)
        rows["controller"].add(run)
        rows["in_process"].samples.append(float(report["seconds"]))  # type: ignore[arg-type]
        rows["rsync"].add(rsync(*peer, f"{tree.source}/", f"{tree.rsync_copy}/"))
    rows["controller"].note = _profile(tree, tree.data, *flags)
    require_converged(tree.source, blog_folder(tree.data), f"controller {what}")
    require_converged(tree.source, tree.rsync_copy, f"rsync {what}")
    return rows


def noop_pass(tree: Tree, runs: int) -> dict[str, Result]:
    """S2b: a pass with nothing to do (a stat walk) beside ``rsync -a`` with nothing to copy."""
    return _idle_passes(tree, runs, what="no-op reconcile", flags=(), peer=("-a",))


def full_validation(tree: Tree, runs: int) -> dict[str, Result]:
    """S3: ``reconcile --full`` (listing, folder scan, store) beside ``rsync -an --delete``."""
    return _idle_passes(
        tree, runs, what="full validation", flags=("--full",), peer=("-an", "--delete")
    )


def watched_edits(tree: Tree, edits: int) -> dict[str, Result]:
    """S2c and S4 (local): the converged blog under ``controller run``, one edit at a time."""
    converge(tree)
    assert tree.data is not None
    rows = daemon.local_edits(
        CONTROLLER, controller_env(tree.data), tree.source, tree.work / "daemon-logs", edits
    )
    require_converged(tree.source, blog_folder(tree.data), "controller run")
    return rows


def run(work: Path, files: int, runs: int, noop_runs: int) -> Tree:
    """S1, then S2b, S3, S2c and S4 on the blog and copy S1 converged."""
    tree = prepare(work, files)
    tree.results.update({f"s1_{k}": v for k, v in initial_sync(tree, runs).items()})
    tree.results.update({f"s2b_{k}": v for k, v in noop_pass(tree, noop_runs).items()})
    tree.results.update({f"s3_{k}": v for k, v in full_validation(tree, noop_runs).items()})
    tree.results.update({f"s4_{k}": v for k, v in watched_edits(tree, noop_runs).items()})
    return tree


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="S1 runs")
    parser.add_argument("--noop-runs", type=int, default=5, help="S2b and S3 runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        tree = run(Path(tmp), args.files, args.runs, args.noop_runs)
        print(json.dumps({k: v.as_dict() for k, v in tree.results.items()}, indent=2))


if __name__ == "__main__":
    main()
