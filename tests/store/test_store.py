"""The store on every backend: bulk trees, idempotent entries, moves, history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.errors import BlogExists, UnknownBlog
from controller.store import BlogRecord, Store
from controller.store.trees import Region
from reconcilers.build import EntryDraft
from reconcilers.core.machine import State
from reconcilers.core.tree import Kind, Node
from reconcilers.outcomes import (
    BuildCrash,
    BuildFailure,
    Dropped,
    FetchFailed,
    Installed,
    LocalStat,
    MadeDir,
    Moved,
    Rebuilt,
    Recorded,
)
from reconcilers.sources.base import Observation


def _blog(store: Store, blog_id: str = "b1") -> str:
    store.add_blog(
        BlogRecord(id=blog_id, source_kind="local", source_config={"location": "/src"}, folder="/f")
    )
    return blog_id


def _file(path: str, digest: str = "h", mtime_ns: int = 1_700_000_000_000_000_000) -> Node:
    return Node(path, Kind.FILE, size=3, mtime_ns=mtime_ns, content_hash=digest, rev="r1")


def _draft(path: str, title: str = "T") -> EntryDraft:
    return EntryDraft(
        path=path, title=title, html="<p>x</p>", date=None, tags=("a",), draft=False, metadata=()
    )


def _installed(node: Node, entry: object = None) -> Installed:
    return Installed(node, LocalStat(1, 3, node.mtime_ns), entry)  # type: ignore[arg-type]


def test_blogs_are_added_listed_and_removed(store: Store) -> None:
    _blog(store, "a")
    _blog(store, "b")
    assert [b.id for b in store.list_blogs()] == ["a", "b"]
    with pytest.raises(BlogExists):
        _blog(store, "a")
    store.remove_blog("a")
    with pytest.raises(UnknownBlog) as info:
        store.get_blog("a")
    assert "blog a" in str(info.value)


def test_observation_and_cursor_are_saved_together(store: Store) -> None:
    blog = _blog(store)
    nodes = (*tuple(_file(f"d/{i}.md", f"h{i}") for i in range(1200)), Node("d", Kind.DIR))
    store.save_observation(blog, Observation(upserts=nodes, deletes=(), cursor="c1"))
    remote = store.load_remote(blog)
    assert len(remote) == 1201 and remote["d/7.md"].content_hash == "h7"
    assert store.get_blog(blog).cursor == "c1"
    store.save_observation(blog, Observation(upserts=(), deletes=("d/7.md",), cursor="c2"))
    assert "d/7.md" not in store.load_remote(blog)
    assert store.get_blog(blog).cursor == "c2"


def test_a_region_loads_its_paths_their_subtrees_and_the_folders_above(store: Store) -> None:
    blog = _blog(store)
    dirs = ["a", "a/b", "a-b", "a0", "x", "x/y", "x/y/z", "100%_"]
    files = ["a/b/c.md", "a/b/c/d.md", "a/bc.md", "a-b/e.md", "a0/f.md", "x/y/z/g.md", "ab.md"]
    files += ["100%_/h.md", "100%x/i.md"]
    store.save_observation(
        blog,
        Observation(
            upserts=(*(Node(d, Kind.DIR) for d in dirs), *(_file(f) for f in files)),
            deletes=(),
            cursor=None,
        ),
    )
    region = Region.around(["a/b", "x/y/z/g.md", "100%_", "gone/new.md"])

    expected = {
        "a", "a/b", "a/b/c.md", "a/b/c/d.md",  # a path, its subtree, the folder above
        "x", "x/y", "x/y/z", "x/y/z/g.md",  # a file and the folders above it
        "100%_", "100%_/h.md",  # SQL wildcards are names, not patterns
    }  # fmt: skip
    assert set(store.load_remote(blog, region)) == expected
    assert set(store.load_synced(blog, region)) == set()  # nothing installed yet
    assert len(store.load_remote(blog)) == len(dirs) + len(files)


def test_install_records_state_stat_and_entry(store: Store) -> None:
    blog = _blog(store)
    node = _file("post.md")
    applied = store.record(blog, [_installed(node, _draft("post.md"))], 0)
    assert applied.set == 1
    row = store.load_synced(blog)["post.md"]
    assert row.state is State.SYNCED and row.node.content_hash == "h"
    assert store.local_stats(blog)["post.md"] == (1, 3, node.mtime_ns)
    [entry] = store.entries(blog)
    assert entry.path == "post.md" and entry.tags == ("a",) and not entry.deleted


def test_setting_the_same_path_twice_keeps_one_entry_id(store: Store) -> None:
    blog = _blog(store)
    store.record(blog, [_installed(_file("p.md", "h1", 10**18), _draft("p.md", "one"))], 0)
    store.record(blog, [_installed(_file("p.md", "h2", 2 * 10**18), _draft("p.md", "two"))], 0)
    [entry] = store.entries(blog)
    assert entry.title == "two"


def test_an_older_update_never_overwrites_a_newer_entry(store: Store) -> None:
    """``updated`` is the build time: a stale writer's older build cannot win."""
    from controller.store import entries

    blog = _blog(store)
    newer, older = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as conn:
        entries.set_entries(conn, blog, [entries.EntryWrite(_draft("p.md", "new"), newer)], newer)
    with store.transaction() as conn:
        entries.set_entries(conn, blog, [entries.EntryWrite(_draft("p.md", "old"), older)], older)
    [entry] = store.entries(blog)
    assert entry.title == "new" and entry.updated == newer


def test_a_newer_build_of_older_content_replaces_the_entry(store: Store) -> None:
    """Restoring an old version (an older mtime) is still the newest build."""
    blog = _blog(store)
    store.record(blog, [_installed(_file("p.md", "h2", 2 * 10**18), _draft("p.md", "new"))], 0)
    store.record(blog, [_installed(_file("p.md", "h1", 10**18), _draft("p.md", "restored"))], 0)
    [entry] = store.entries(blog)
    assert entry.title == "restored"


def test_a_build_failure_rejects_the_file_and_keeps_the_previous_entry(store: Store) -> None:
    blog = _blog(store)
    store.record(blog, [_installed(_file("p.md", "h1"), _draft("p.md", "good"))], 0)
    failure = BuildFailure("Invalid metadata on line 2: expected 'Key: value'", 2)
    applied = store.record(blog, [_installed(_file("p.md", "h2"), failure)], 0)
    assert applied.errors == 1
    row = store.load_synced(blog)["p.md"]
    assert row.state is State.REJECTED and row.error == failure.message
    [entry] = store.entries(blog)
    assert entry.title == "good" and not entry.deleted


def test_a_directory_move_is_one_update_that_keeps_entry_ids(store: Store) -> None:
    blog = _blog(store)
    outcomes = [MadeDir(Node("x", Kind.DIR))] + [
        _installed(_file(f"x/{i}.md", f"h{i}"), _draft(f"x/{i}.md")) for i in range(50)
    ]
    store.record(blog, outcomes, 0)
    before = {e.path: (e.id, e.created) for e in store.entries(blog)}
    applied = store.record(blog, [Moved("x", "y", Kind.DIR)], 0)
    assert applied.move == 1
    synced = store.load_synced(blog)
    assert "x" not in synced and "y" in synced and "y/7.md" in synced
    after = {e.path: (e.id, e.created) for e in store.entries(blog)}
    assert {p.replace("x/", "y/", 1): v for p, v in before.items()} == after


def test_a_move_onto_an_existing_path_tombstones_the_replaced_entry(store: Store) -> None:
    blog = _blog(store)
    store.record(
        blog,
        [
            _installed(_file("a.md", "ha"), _draft("a.md")),
            _installed(_file("b.md", "hb"), _draft("b.md")),
        ],
        0,
    )
    ids = {e.path: e.id for e in store.entries(blog)}
    store.record(blog, [Moved("a.md", "b.md", Kind.FILE)], 0)
    live = [e for e in store.entries(blog) if not e.deleted]
    assert [(e.path, e.id) for e in live] == [("b.md", ids["a.md"])]
    assert [e.id for e in store.entries(blog) if e.deleted] == [ids["b.md"]]


def test_a_drop_soft_deletes_and_a_new_file_revives_the_same_id(store: Store) -> None:
    blog = _blog(store)
    store.record(blog, [_installed(_file("p.md"), _draft("p.md"))], 0)
    [entry] = store.entries(blog)
    store.record(blog, [Dropped("p.md", Kind.FILE, on_disk=True)], 0)
    [gone] = store.entries(blog)
    assert gone.deleted and gone.deleted_at is not None and gone.id == entry.id
    store.record(blog, [_installed(_file("p.md", "h9"), _draft("p.md"))], 0)
    [back] = store.entries(blog)
    assert back.id == entry.id and not back.deleted and back.created == entry.created


def test_a_failed_fetch_keeps_the_installed_version_and_schedules_a_retry(store: Store) -> None:
    blog = _blog(store)
    store.record(blog, [_installed(_file("img.png", "old"))], 0)
    store.record(blog, [FetchFailed(_file("img.png", "new"), "connection reset")], 5)
    row = store.load_synced(blog)["img.png"]
    assert row.state is State.FAILED and row.node.content_hash == "old"
    assert row.failed_hash == "new" and row.retry_at_ns > 5 and row.error == "connection reset"


def test_ignored_and_rejected_paths_are_recorded_without_content(store: Store) -> None:
    blog = _blog(store)
    store.record(
        blog,
        [
            Recorded(Node(".DS_Store", Kind.FILE, ignored=True), ignored=True),
            Recorded(
                Node("bad", Kind.FILE, problem="x"), ignored=False, message="path is absolute"
            ),
        ],
        0,
    )
    synced = store.load_synced(blog)
    assert synced[".DS_Store"].state is State.IGNORED and not synced[".DS_Store"].on_disk
    assert synced["bad"].state is State.REJECTED and synced["bad"].error == "path is absolute"


def test_paths_with_sql_wildcards_move_only_their_own_subtree(store: Store) -> None:
    blog = _blog(store)
    store.record(
        blog,
        [
            MadeDir(Node("a_b", Kind.DIR)),
            MadeDir(Node("axb", Kind.DIR)),
            _installed(_file("a_b/1", "h1")),
            _installed(_file("axb/1", "h2")),
        ],
        0,
    )
    store.record(blog, [Moved("a_b", "c%", Kind.DIR)], 0)
    assert sorted(store.load_synced(blog)) == ["axb", "axb/1", "c%", "c%/1"]


def test_history_is_bounded_per_blog(store: Store) -> None:
    blog = _blog(store)
    store.record(blog, [_installed(_file(f"{i}.png", f"h{i}")) for i in range(30)], 0)
    store.record_pass(
        blog, at=datetime.now(UTC), seconds=0.1, result="ok", message=None, history_limit=10
    )
    history = store.history(blog, limit=100)
    assert len(history) == 10 and history[0].path == "29.png"
    assert store.get_blog(blog).last_pass_result == "ok"


def test_a_crashed_build_is_retried_with_backoff_three_times_then_waits_for_new_content(
    store: Store,
) -> None:
    blog = _blog(store)
    post = _file("p.md", "v1")
    store.record(blog, [_installed(post, BuildCrash("build crashed (signal 11)"))], 0)
    row = store.load_synced(blog)["p.md"]
    assert row.state is State.FAILED and row.error == "build crashed (signal 11)"
    assert row.node.content_hash == "v1", "the bytes are installed; only the build failed"
    assert row.retry_at_ns == 1_000_000_000 and row.failed_hash == "v1"
    delays = []
    for now in (10, 20, 30):
        store.record(blog, [Rebuilt(post, BuildCrash("build timed out after 30 s"))], now)
        row = store.load_synced(blog)["p.md"]
        delays.append(row.retry_at_ns - now)
    assert delays[:2] == [2_000_000_000, 4_000_000_000]
    assert row.retry_pending(post, 10**18), "no retry once it gave up"
    assert row.error == (
        "build timed out after 30 s (gave up after 4 attempts; change the file to retry)"
    )
    assert not row.retry_pending(_file("p.md", "v2"), 40), "new content is tried at once"
    store.record(blog, [_installed(_file("p.md", "v2"), _draft("p.md"))], 50)
    row = store.load_synced(blog)["p.md"]
    assert row.state is State.SYNCED and row.error is None and row.retry_at_ns == 0


def test_a_content_error_is_rejected_at_once_and_not_retried(store: Store) -> None:
    blog = _blog(store)
    post = _file("p.md", "v1")
    store.record(blog, [_installed(post, BuildFailure("Invalid metadata on line 2", 2))], 0)
    row = store.load_synced(blog)["p.md"]
    assert row.state is State.REJECTED and row.retry_at_ns == 0


def test_a_dropped_postgres_connection_fails_one_call_and_the_next_reconnects(
    postgres_url: str,
) -> None:
    """Without a ping per checkout (a round trip each), a server that dropped our
    connections costs one failed call: the pool then throws its stale connections away."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError
    from support import truncate_store

    from controller.errors import StoreError

    truncate_store(postgres_url)  # the schema is this worker's, shared by its tests
    store = Store(postgres_url, auto_upgrade=True)
    admin = create_engine(postgres_url)
    try:
        blog = _blog(store)
        with store.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises((StoreError, OperationalError)):
            store.set_dirty(blog, True)
        store.set_dirty(blog, True)
        assert store.get_blog(blog).dirty
    finally:
        admin.dispose()
        store.close()
