"""The reconcile shell through its library API, on every store backend."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import tree

from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.core.machine import State
from reconcilers.errors import SourceGone, UnsafePlan
from reconcilers.sources.local import LocalSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"


@pytest.fixture
def blog(tmp_path: Path, store: Store) -> tuple[Reconciler, Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    shutil.copytree(EXAMPLES, src)
    store.add_blog(
        BlogRecord(
            id="b", source_kind="local", source_config={"location": str(src)}, folder=str(dst)
        )
    )
    return Reconciler(store, Settings(data_dir=tmp_path, install_batch=3)), src, dst


def test_first_pass_mirrors_the_sample_blog_and_rejects_only_the_broken_post(blog) -> None:
    reconciler, src, dst = blog
    report = reconciler.reconcile("b")
    assert tree(dst) == tree(src)
    assert report.actions["set"] == 8 and report.errors == 1
    assert report.failures == [("broken.md", "Invalid metadata on line 2: expected 'Key: value'")]
    states = {p: r.state for p, r in reconciler.store.load_synced("b").items()}
    assert states["broken.md"] is State.REJECTED
    assert sum(s is State.SYNCED for s in states.values()) == len(states) - 1


def test_a_converged_blog_plans_nothing_and_rewrites_nothing(blog) -> None:
    reconciler, _, dst = blog
    reconciler.reconcile("b")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dst.rglob("*")}
    report = reconciler.reconcile("b")
    assert report.actions == {"set": 0, "move": 0, "drop": 0} and report.passes == 1
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dst.rglob("*")} == before


def test_a_blog_no_longer_due_once_its_lease_is_held_is_skipped_untouched(blog) -> None:
    reconciler, src, dst = blog
    reconciler.reconcile("b")
    (src / "notes.txt").write_text("changed\n")
    before = reconciler.store.get_blog("b")
    seen = []

    report = reconciler.reconcile("b", due=lambda current: seen.append(current) or False)

    assert report.skipped and report.passes == 0 and report.actions["set"] == 0
    assert [r.id for r in seen] == ["b"]  # asked once, with the blog read under the lease
    assert reconciler.store.get_blog("b").last_pass_at == before.last_pass_at
    assert (dst / "notes.txt").read_text() != "changed\n"


def test_an_empty_listing_never_becomes_a_mass_drop(blog) -> None:
    reconciler, src, dst = blog
    reconciler.reconcile("b")
    shutil.rmtree(src)
    src.mkdir()
    with pytest.raises(UnsafePlan, match="refusing to drop"):
        reconciler.reconcile("b")
    assert (dst / "notes.txt").exists()
    assert reconciler.store.get_blog("b").status == "error"


def test_a_missing_source_folder_is_a_blog_error_that_touches_nothing(blog) -> None:
    reconciler, src, dst = blog
    reconciler.reconcile("b")
    shutil.rmtree(src)
    with pytest.raises(SourceGone) as info:
        reconciler.reconcile("b")
    assert info.value.blog_id == "b" and "does not exist" in str(info.value)
    assert (dst / "notes.txt").exists()


def test_a_file_changed_while_it_is_copied_ends_at_its_newest_content(blog, monkeypatch) -> None:
    reconciler, src, dst = blog
    real_fetch = LocalSource.fetch
    edits = []

    def fetch_and_edit(self, node, into):
        if node.path == "notes.txt" and not edits:
            edits.append(node.path)
            (src / "notes.txt").write_text("Title: Newer\n\nedited during the copy\n")
        return real_fetch(self, node, into)

    monkeypatch.setattr(LocalSource, "fetch", fetch_and_edit)
    reconciler.reconcile("b")
    assert (dst / "notes.txt").read_text() == "Title: Newer\n\nedited during the copy\n"
    assert reconciler.store.load_synced("b")["notes.txt"].state is State.SYNCED


def test_a_crash_mid_install_is_recovered_by_the_next_pass(blog, monkeypatch) -> None:
    reconciler, src, dst = blog
    real_rename = os.rename
    calls = []

    def crashing_rename(a, b, *args, **kwargs):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return real_rename(a, b, *args, **kwargs)

    monkeypatch.setattr("reconcilers.executor.os.rename", crashing_rename)
    with pytest.raises(KeyboardInterrupt):
        reconciler.reconcile("b")
    monkeypatch.undo()
    assert reconciler.store.get_blog("b").dirty
    (dst / "stray-by-hand.txt").write_text("not from the source")
    report = reconciler.reconcile("b")
    assert tree(dst) == tree(src)
    assert report.drifted >= 1 and not reconciler.store.get_blog("b").dirty
    assert not list(dst.rglob(".~ctl-*"))


def test_a_post_that_fails_after_an_edit_keeps_its_previous_entry(blog) -> None:
    reconciler, src, _ = blog
    reconciler.reconcile("b")
    [before] = [e for e in reconciler.store.entries("b") if e.path == "notes.txt"]
    (src / "notes.txt").write_text("foo: bar: baz\nxyz")
    report = reconciler.reconcile("b")
    assert report.errors == 1
    [after] = [e for e in reconciler.store.entries("b") if e.path == "notes.txt"]
    assert after == before


def test_a_settled_blog_skips_planning_until_a_retry_is_due(blog, monkeypatch) -> None:
    reconciler, src, dst = blog
    reconciler.reconcile("b")
    assert reconciler.store.get_blog("b").settled_until_ns is not None

    def unreadable(self, node, into):
        from reconcilers.errors import FetchError

        raise FetchError("permission denied", path=node.path)

    (src / "new.png").write_bytes(b"png")
    monkeypatch.setattr(LocalSource, "fetch", unreadable)
    report = reconciler.reconcile("b")
    assert report.errors == 1
    row = reconciler.store.load_synced("b")["new.png"]
    assert row.state is State.FAILED and row.error == "permission denied"
    settled = reconciler.store.get_blog("b").settled_until_ns
    assert settled == row.retry_at_ns
    monkeypatch.undo()
    assert reconciler.reconcile("b").actions["set"] == 0  # backoff not expired yet
    monkeypatch.setattr("controller.reconcile.time.time_ns", lambda: settled + 1)
    assert reconciler.reconcile("b").actions["set"] == 1
    assert (dst / "new.png").read_bytes() == b"png"


def test_a_renamed_directory_is_one_move_that_copies_nothing(blog) -> None:
    reconciler, src, dst = blog
    (src / "archive").mkdir()
    for i in range(300):
        (src / "archive" / f"{i}.md").write_text(f"Title: Post {i}\n\nbody {i}\n")
    reconciler.reconcile("b")
    inodes = {p.name: p.stat().st_ino for p in (dst / "archive").iterdir()}
    ids = {e.path: e.id for e in reconciler.store.entries("b") if e.path.startswith("archive/")}
    (src / "archive").rename(src / "old-posts")
    report = reconciler.reconcile("b")
    assert report.actions == {"set": 0, "move": 1, "drop": 0}
    assert {p.name: p.stat().st_ino for p in (dst / "old-posts").iterdir()} == inodes
    moved = {e.path: e.id for e in reconciler.store.entries("b") if not e.deleted}
    assert {p.replace("archive/", "old-posts/"): i for p, i in ids.items()}.items() <= moved.items()
    moves = [h for h in reconciler.store.history("b", limit=1000) if h.action == "move"]
    assert [(h.path, h.result) for h in moves] == [("archive", "ok: now old-posts")]


@pytest.mark.slow
def test_a_directory_of_10000_files_renamed_is_one_rename_and_a_few_statements(
    blog, monkeypatch
) -> None:
    """The cost of a directory rename does not grow with the files inside it."""
    from sqlalchemy import event

    reconciler, src, dst = blog
    reconciler.settings = reconciler.settings.model_copy(update={"install_batch": 1000})
    (src / "photos").mkdir()
    for i in range(10_000):
        (src / "photos" / f"{i}.jpg").write_bytes(b"jpg %d" % i)
    reconciler.reconcile("b")
    inodes = {p.name: p.stat().st_ino for p in (dst / "photos").iterdir()}
    (src / "photos").rename(src / "pictures")

    renames: list[tuple[str, str]] = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (renames.append((a, b)), real_rename(a, b))[1])
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(reconciler.store.engine, "before_cursor_execute", listener)
    try:
        report = reconciler.reconcile("b")
    finally:
        event.remove(reconciler.store.engine, "before_cursor_execute", listener)

    assert report.actions == {"set": 0, "move": 1, "drop": 0}
    assert renames == [(str(dst / "photos"), str(dst / "pictures"))]
    assert {p.name: p.stat().st_ino for p in (dst / "pictures").iterdir()} == inodes
    writes = [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert len(writes) < 30, writes


class _Killed(BaseException):
    """What SIGKILL leaves: nothing after this point runs, no handler sees it."""


def _killed_at(reconciler: Reconciler, monkeypatch, owner: type, name: str, crash) -> Reconciler:
    """Run a pass that dies where ``owner.name`` is called; return a fresh process's reconciler."""
    monkeypatch.setattr(owner, name, crash)
    with pytest.raises(_Killed):
        reconciler.reconcile("b")
    monkeypatch.undo()
    reconciler.leases.close()
    return Reconciler(reconciler.store, reconciler.settings)


def test_a_crash_between_a_move_and_the_rebuild_of_its_posts_is_rebuilt_next_pass(
    blog, monkeypatch
) -> None:
    """A post moved out of drafts/ is a draft no more, even if the process died in between."""
    reconciler, src, _dst = blog
    reconciler.reconcile("b")
    before = {e.path: e for e in reconciler.store.entries("b") if not e.deleted}
    assert before["drafts/unfinished-thoughts.md"].draft
    (src / "drafts").rename(src / "published")

    def killed(*_args: object) -> None:
        raise _Killed

    after_crash = _killed_at(reconciler, monkeypatch, Reconciler, "_rebuild", killed)
    after_crash.reconcile("b")
    live = {e.path: e for e in after_crash.store.entries("b") if not e.deleted}
    moved = live["published/unfinished-thoughts.md"]
    assert moved.id == before["drafts/unfinished-thoughts.md"].id
    assert not moved.draft
    states = {p: row.state for p, row in after_crash.store.load_synced("b").items()}
    assert State.BUILDING not in states.values()
    after_crash.close()


def test_a_crash_between_a_folder_rename_and_its_record_keeps_the_entry_ids(
    blog, monkeypatch
) -> None:
    """Renamed on disk, never recorded: full validation pairs the posts by content."""
    from reconcilers.outcomes import Moved

    reconciler, src, _dst = blog
    reconciler.reconcile("b")
    before = {e.path: e for e in reconciler.store.entries("b") if not e.deleted}
    (src / "travel").rename(src / "trips")
    real_record = Store.record

    def record(self: Store, blog_id: str, outcomes, now_ns: int):  # type: ignore[no-untyped-def]
        if any(isinstance(o, Moved) for o in outcomes):
            raise _Killed
        return real_record(self, blog_id, outcomes, now_ns)

    after_crash = _killed_at(reconciler, monkeypatch, Store, "record", record)
    report = after_crash.reconcile("b")
    assert report.drifted > 0  # the pass after a crash validated the folder
    live = {e.path: e for e in after_crash.store.entries("b") if not e.deleted}
    for path, entry in before.items():
        if path.startswith("travel/"):
            moved = live["trips/" + path.removeprefix("travel/")]
            assert (moved.id, moved.created) == (entry.id, entry.created), path
    assert not any(p.startswith("travel/") for p in live)
    after_crash.close()
