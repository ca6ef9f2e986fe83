"""A converged Dropbox blog without its downloads, for S2a at 100k and 1M files.

S2a times a pass on a converged, settled blog; how the blog got converged is
not what it measures. A real first sync from the fake runs at about 600
files/s here, so a 1M-file blog would take half an hour to build before the
few milliseconds S2a times. The seed builds the same store state without the
downloads, by the controller's own code: the real Dropbox source lists the
fake, the real planner plans, ``Store.record`` records the outcomes of the
real executor's plan walk, in which an executor that never writes the folder
reports each file installed instead of fetching it (:func:`seed` says which
step of a first pass it takes and which it skips). Only the folder and the
local inode differ from a real first sync:

- the blog folder stays empty (a no-op Dropbox pass never reads it), so a
  seeded blog must never be checked with ``Blog.check_converged`` nor given a
  ``--full`` pass, which would find every file missing and download them all;
- each file's ``LocalStat`` is what the real executor records (the size, and
  the Dropbox ``client_modified`` it sets as the file's mtime) with a made-up
  inode, as no file exists to have one.

:func:`check` proves the rest: a blog seeded from the same fake state as a
real first sync has the same store rows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconcilers.build import builders
from reconcilers.core.tree import Node
from reconcilers.executor import Executor
from reconcilers.outcomes import Installed, LocalStat, MadeDir, Outcome

if TYPE_CHECKING:
    from bench.dropbox import Account, Blog

#: S2a builds its blog by a real first sync up to this size (the largest such
#: blog is also S4's, which needs the files on disk); larger ones are seeded.
REAL_MAX = 10_000
#: The size :func:`check` compares a seeded blog with a real first sync at.
CHECK_FILES = 300
#: Columns of the synced tree a seeded blog cannot share with a real one.
UNSHARED = {"synced_nodes": ("local_inode",)}
#: Blog columns that are clocks, paths or lease counters, not sync state.
BLOG_STATE = (
    "source_kind",
    "source_config",
    "cursor",
    "status",
    "status_message",
    "dirty",
    "settled_until_ns",
    "last_pass_result",
    "generation",
    "pass_generation",
    "failures",
)


class Seeded(int):
    """An S2a size to seed even though it is small (the smoke run exercises the seed)."""


def is_seeded(size: int) -> bool:
    return isinstance(size, Seeded) or size > REAL_MAX


class _NoDownloads(Executor):
    """The real executor's plan walk and batching; the two methods that write the folder
    report success without writing it."""

    _inodes = itertools.count(10**9)

    def make_dir(self, node: Node) -> Outcome:
        return MadeDir(node)

    def install(self, nodes: list[Node]) -> list[Outcome]:
        posts = [n.path for n in nodes if builders.is_post(n.path)]
        if posts:  # an entry is built from the file's bytes, which the seed never has
            raise RuntimeError(f"cannot seed a blog that builds entries ({posts[0]})")
        return [
            Installed(n, LocalStat(next(self._inodes), n.size, n.mtime_ns), None) for n in nodes
        ]


def seed(blog: Blog) -> float:
    """Make ``blog`` (connected, never synced) converged and settled; the seconds it took.

    The first round of ``Reconciler._rounds`` for a blog with no cursor, step by
    step: the real source lists the fake and each page is saved as the pass
    saves it, the real planner plans on the listed tree, the real executor's
    plan walk batches the outcomes (``_NoDownloads``) and ``Store.record``
    records each batch between the pass's ``set_dirty`` calls. The pass's
    next round would list nothing new, plan over both trees, find nothing and
    ``mark_settled``; at 1M files that plan costs half a minute, and
    :func:`check` shows it is empty, so the seed marks the blog settled
    itself. One real pass then finds it settled (one continue), records its
    result and trims the history, as the first sync's end would.
    """
    from controller.reconcile import _apply_observation
    from controller.sources import open_source
    from controller.store.apply import Applied
    from reconcilers.core.planner import plan

    store, settings = blog.store, blog.settings
    fake = blog.acct.fake
    start = time.perf_counter()
    record = store.get_blog("b")
    if record.cursor is not None or record.last_pass_at is not None:
        raise RuntimeError("only a blog that has never been synced can be seeded")
    source = open_source(record, store, settings)
    cursor = record.cursor
    known = store.load_remote(record.id)
    remote = dict(known)
    # The source asks for pages of 2,000 (Dropbox's maximum); the fake's default of
    # 500 makes four times as many, each walking the rest of the fake's index of
    # paths (see ``bench.dropbox.populate``). Paging changes no stored row (check()).
    fake.page_size, pages = 2000, fake.page_size
    try:
        for page in source.changes(cursor, known):
            if not page.empty or page.cursor != cursor:
                store.save_observation(record.id, page)
                cursor = page.cursor
            _apply_observation(remote, page)
    finally:
        fake.page_size = pages
    actions = plan(remote, store.load_synced(record.id), now_ns=time.time_ns())
    del remote, known
    executor = _NoDownloads(
        Path(record.folder), source, blog_id=record.id, batch_size=settings.install_batch
    )
    applied = Applied()
    store.set_dirty(record.id, True)
    for batch in executor.run(actions):
        applied.add(store.record(record.id, batch, time.time_ns()))
    files = len(blog.acct.files)
    if applied.errors or applied.needs_validation or applied.set != files:
        raise AssertionError(f"the seed should record {files} installs and nothing else")
    store.set_dirty(record.id, False)
    store.mark_settled(record.id)
    report = blog.reconcile()
    if any(report.actions.values()) or report.errors:
        raise AssertionError(f"the pass after the seed acted: {report}")
    blog.seeded = True
    return time.perf_counter() - start


def store_rows(engine: Any, blog_id: str) -> dict[str, Any]:
    """A blog's sync state in a store, as comparable values (see ``UNSHARED``)."""
    from sqlalchemy import func, select

    from controller.store.models import BLOGS, ENTRIES, HISTORY, REMOTE, SYNCED

    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in (REMOTE, SYNCED):
            cols = [c for c in table.c if c.name not in UNSHARED.get(table.name, ())]
            query = select(*cols).where(table.c.blog_id == blog_id).order_by(table.c.path)
            out[table.name] = [tuple(r) for r in conn.execute(query)]
        row = conn.execute(select(BLOGS).where(BLOGS.c.id == blog_id)).one()
        out["blogs"] = {name: getattr(row, name) for name in BLOG_STATE}
        out["entries"] = conn.execute(
            select(func.count()).select_from(ENTRIES).where(ENTRIES.c.blog_id == blog_id)
        ).scalar()
        h = HISTORY.c
        out["history"] = sorted(
            tuple(r)
            for r in conn.execute(select(h.action, h.path, h.result).where(h.blog_id == blog_id))
        )
    return out


def same_rows(want: dict[str, Any], got: dict[str, Any]) -> None:
    """Raise naming the first table (and row) where a seeded store differs from a real one."""
    for key in want:
        if got[key] != want[key]:
            raise AssertionError(
                f"a seeded blog's {key} differ from a real first sync's: "
                f"{_first_difference(want[key], got[key])}"
            )
    if not want["synced_nodes"]:
        raise AssertionError("the check compared empty trees")


def check(work: Path, acct: Account, make_blog: Callable[[Path, Account], Blog]) -> dict[str, Any]:
    """A real first sync and a seed of the same fake state leave equal store rows.

    Compared: every column of ``remote_nodes`` and ``synced_nodes`` but the
    local inode, the blog's sync state (``BLOG_STATE``: cursor, settled,
    dirty, status...), the entries (none: builds are off) and the history's
    actions. Not compared: clocks (pass times, history times, the next
    pass's time), the folder path and the lease counter. The real sync lists
    in pages of 100, the seed in one. It also plans over
    the seeded trees, which must need nothing: the seed marks the blog settled
    without the round that would find that out.
    """
    from reconcilers.core.planner import plan

    real, seeded = make_blog(work / "real", acct), make_blog(work / "seeded", acct)
    try:
        # Pages of 100 for the real sync, one page for the seed: paging leaves no trace.
        acct.fake.page_size, pages = 100, acct.fake.page_size
        start = time.perf_counter()
        try:
            real.reconcile()
        finally:
            acct.fake.page_size = pages
        real_s = time.perf_counter() - start
        real.check_converged()
        seed_s = seed(seeded)
        if plan(seeded.store.load_remote("b"), seeded.store.load_synced("b")):
            raise AssertionError("a seeded blog marked settled still has something to do")
        want, got = store_rows(real.store.engine, "b"), store_rows(seeded.store.engine, "b")
        same_rows(want, got)
    finally:
        real.close()
        seeded.close()
    return {
        "files": len(acct.files),
        "rows": len(want["synced_nodes"]),
        "real_s": real_s,
        "seed_s": seed_s,
    }


def _first_difference(want: Any, got: Any) -> object:
    """(real, seeded) at the first place they differ, for the check's message."""
    if isinstance(want, dict):
        return next((k, want[k], got.get(k)) for k in want if want[k] != got.get(k))
    if isinstance(want, list):
        pairs = zip(want, got, strict=False)
        return next((pair for pair in pairs if pair[0] != pair[1]), (len(want), len(got)))
    return (want, got)
