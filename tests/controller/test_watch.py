"""The watch of local sources: what each trigger says changed (real inotify)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until

from controller.store import BlogRecord
from controller.watch import MAX_PATHS, Watcher

Fired = list[tuple[str, frozenset[str] | None]]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Fired]]:
    src = tmp_path / "src"
    (src / "posts").mkdir(parents=True)
    (src / "posts" / "old.md").write_text("old\n")
    fired: Fired = []
    lock = threading.Lock()

    def fire(blog_id: str, paths: frozenset[str] | None) -> None:
        with lock:
            fired.append((blog_id, paths))

    watcher = Watcher(fire)
    watcher.start()
    watcher.follow(
        [BlogRecord(id="b", source_kind="local", source_config={"location": str(src)}, folder="/x")]
    )
    assert watcher.watching() == {"b"}
    yield src, fired
    watcher.stop()


def _changed(fired: Fired) -> set[str] | None:
    """Every path the triggers carried; None when one said "walk everything"."""
    out: set[str] = set()
    for _, paths in fired:
        if paths is None:
            return None
        out |= paths
    return out


def test_a_trigger_names_the_paths_that_changed(watched: tuple[Path, Fired]) -> None:
    src, fired = watched
    (src / "posts" / "new.md").write_text("new\n")
    (src / "posts" / "old.md").rename(src / "posts" / "renamed.md")
    wait_until(lambda: {"posts/new.md", "posts/renamed.md"} <= (_changed(fired) or set()), 5)
    assert _changed(fired) == {"posts/new.md", "posts/old.md", "posts/renamed.md"}
    assert {blog for blog, _ in fired} == {"b"}


def test_a_file_moved_in_from_outside_is_named_by_its_path_inside(
    watched: tuple[Path, Fired], tmp_path: Path
) -> None:
    src, fired = watched
    outside = tmp_path / "draft.md"
    outside.write_text("draft\n")
    outside.rename(src / "posts" / "draft.md")
    wait_until(lambda: "posts/draft.md" in (_changed(fired) or set()), 5, "the move's trigger")
    assert _changed(fired) == {"posts/draft.md"}


def test_a_burst_of_more_than_max_paths_in_one_window_asks_for_a_walk() -> None:
    fired: Fired = []
    watcher = Watcher(lambda blog_id, paths: fired.append((blog_id, paths)))
    for i in range(MAX_PATHS + 1):  # what inotify reports within one coalescing window
        watcher._changed("b", f"f{i}.txt")
    watcher._changed("c", "one.md")
    watcher.start()
    try:
        wait_until(lambda: len(fired) == 2, 5, "one trigger per blog")
    finally:
        watcher.stop()
    assert sorted(fired, key=lambda f: f[0]) == [("b", None), ("c", frozenset({"one.md"}))]


def test_changes_inside_an_ignored_folder_trigger_nothing(watched: tuple[Path, Fired]) -> None:
    src, fired = watched
    (src / ".dropbox.cache").mkdir()
    time.sleep(0.5)
    fired.clear()
    (src / ".dropbox.cache" / "blob").write_text("x")
    (src / ".dropbox.cache" / "blob").unlink()
    time.sleep(0.5)
    assert fired == []
