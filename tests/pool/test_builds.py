"""Builds in the supervised pool, through a real reconcile: bad builders fail alone.

The misbehaving builders are a test-only plugin package (``plugin_dist``),
found through the ``controller.builders`` entry-point group like any
installed plugin; worker processes see it because they inherit sys.path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import workers, zombies
from support import tree

from controller.pool import Pool
from controller.pool.builds import PoolBuilds
from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.build import builders
from reconcilers.core.machine import State

PLUGINS = Path(__file__).parent / "plugin_dist"
BAD = {
    "a.raise": "build raised RuntimeError: the converter broke",
    "b.segv": "build crashed (signal 11)",
    "c.hang": "build timed out after 2 s",
    "d.leak": "build ran out of memory",
    "e.exit": "build crashed (the worker exited with status 3)",
}
RULES = {".raise": "test-raise", ".segv": "test-segv", ".hang": "test-hang"} | {
    ".leak": "test-leak",
    ".exit": "test-exit",
    ".none": "test-none",
}


@dataclass
class Blog:
    src: Path
    folder: Path
    store: Store
    reconciler: Reconciler

    def states(self) -> dict[str, tuple[State, str | None]]:
        return {
            p: (r.state, r.error)
            for p, r in self.store.load_synced("b").items()
            if not r.node.is_dir
        }

    def titles(self) -> dict[str, str]:
        return {e.path: e.title for e in self.store.entries("b") if not e.deleted}


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, others: set[int]) -> Iterator[Blog]:
    monkeypatch.syspath_prepend(str(PLUGINS))
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", builders=RULES
    )
    rules = builders.Rules.with_overrides(settings.builders)
    rules.check()
    builders.configure(rules)
    src, folder = tmp_path / "src", tmp_path / "blog"
    src.mkdir()
    store = Store(settings.effective_database_url, auto_upgrade=True)
    store.add_blog(
        BlogRecord(
            id="b", source_kind="local", source_config={"location": str(src)}, folder=str(folder)
        )
    )
    pool = Pool(2, timeout=2, memory_limit=512 * 1024**2)
    reconciler = Reconciler(store, settings, builds=PoolBuilds(pool))
    try:
        yield Blog(src, folder, store, reconciler)
    finally:
        reconciler.close()
        pool.close()
        store.close()
        builders.configure(builders.Rules.with_overrides({}))
    assert set(workers()) <= others, "a worker outlived the pool"
    assert zombies() == [], "a worker was not reaped"


def _posts(src: Path, n: int) -> dict[str, str]:
    for i in range(n):
        (src / f"post-{i}.md").write_text(f"Title: Post {i}\n\nBody {i}.\n")
    return {f"post-{i}.md": f"Post {i}" for i in range(n)}


def test_each_bad_builder_fails_only_its_own_file_with_its_own_error(blog: Blog) -> None:
    good = _posts(blog.src, 8)
    for name in BAD:
        (blog.src / name).write_bytes(b"bad\n")
    (blog.src / "f.none").write_bytes(b"anything")
    report = blog.reconciler.reconcile("b")
    states = blog.states()
    assert {p: states[p] for p in BAD} == {p: (State.FAILED, m) for p, m in BAD.items()}
    assert all(states[p] == (State.SYNCED, None) for p in good)
    assert states["f.none"] == (State.SYNCED, None) and "f.none" not in blog.titles()
    assert blog.titles() == good
    assert tree(blog.folder) == tree(blog.src), "every file is installed, built or not"
    assert report.errors == len(BAD) and sorted(report.failures) == sorted(BAD.items())
    assert zombies() == []


def test_a_fixed_file_builds_on_the_next_pass(blog: Blog) -> None:
    for name in BAD:
        (blog.src / name).write_bytes(b"bad\n")
    blog.reconciler.reconcile("b")
    for name in BAD:
        (blog.src / name).write_bytes(f"ok\nTitle: Fixed {name}\n\nnow it builds\n".encode())
    report = blog.reconciler.reconcile("b")
    assert report.errors == 0
    assert set(blog.states().values()) == {(State.SYNCED, None)}
    assert blog.titles() == {name: f"Fixed {name}" for name in BAD}


def test_a_crashed_build_is_rebuilt_after_its_backoff_without_a_download(blog: Blog) -> None:
    (blog.src / "e.exit").write_bytes(b"bad\n")
    blog.reconciler.reconcile("b")
    inode = (blog.folder / "e.exit").stat().st_ino
    again = blog.reconciler.reconcile("b")
    assert again.actions["set"] == 0 and again.errors == 0, "the retry waits for its backoff"
    import time

    time.sleep(1.1)
    retried = blog.reconciler.reconcile("b")
    assert retried.errors == 1 and retried.actions["set"] == 0
    assert (blog.folder / "e.exit").stat().st_ino == inode, "rebuilt from the installed copy"
    row = blog.store.load_synced("b")["e.exit"]
    assert row.state is State.FAILED and row.retry_at_ns > 0


def test_the_lease_is_renewed_while_a_build_hangs(tmp_path: Path, blog: Blog) -> None:
    settings = blog.reconciler.settings.model_copy(update={"lease_ttl": 1.0, "lease_renew": 0.2})
    reconciler = Reconciler(blog.store, settings, builds=blog.reconciler.builds)
    try:
        _posts(blog.src, 2)
        (blog.src / "c.hang").write_bytes(b"bad\n")
        report = reconciler.reconcile("b")  # the hang lasts 2 s, twice the lease's TTL
    finally:
        reconciler.close()
    assert report.errors == 1 and blog.states()["post-0.md"] == (State.SYNCED, None)
