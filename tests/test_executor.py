"""The executor: atomic verified installs, single-rename moves, nothing outside the folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import pytest

from reconcilers.build.jobs import InlineBuilds
from reconcilers.core.plan import Drop, MakeDir, Move, Set
from reconcilers.core.renames import Reason
from reconcilers.core.tree import Kind, Node
from reconcilers.executor import Executor
from reconcilers.hashing import content_hash
from reconcilers.outcomes import ActionFailed, BuildCrash, FetchFailed, Installed, Moved, Rebuilt
from reconcilers.sources.base import Observation


class FakeSource:
    """In-memory bytes by path; ``lie`` serves different bytes than promised."""

    kind = "fake"

    def __init__(self, files: Mapping[str, bytes], lie: bool = False) -> None:
        self.files = dict(files)
        self.lie = lie

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Observation:
        return Observation((), (), None)

    def fetch(self, node: Node, into: BinaryIO) -> None:
        data = self.files[node.path]
        into.write(data + b"!" if self.lie else data)

    def describe(self) -> str:
        return "fake"


def _node(path: str, data: bytes, mtime_ns: int = 1_600_000_000_123_456_789) -> Node:
    return Node(path, Kind.FILE, len(data), mtime_ns, content_hash(data))


def _outcomes(executor: Executor, plan: tuple) -> list:
    return [o for batch in executor.run(plan) for o in batch]


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob(".~ctl-*")]


def test_set_installs_verified_bytes_with_the_source_mtime(tmp_path: Path) -> None:
    data = b"Title: Hi\n\nbody"
    executor = Executor(tmp_path, FakeSource({"p.md": data}))
    [outcome] = _outcomes(executor, (Set(_node("p.md", data)),))
    assert isinstance(outcome, Installed)
    assert (tmp_path / "p.md").read_bytes() == data
    assert (tmp_path / "p.md").stat().st_mtime_ns == 1_600_000_000_123_456_789
    assert outcome.stat.inode == (tmp_path / "p.md").stat().st_ino
    assert outcome.entry is not None and outcome.entry.title == "Hi"
    assert _leftovers(tmp_path) == []


def test_bytes_that_do_not_match_the_hash_are_never_installed(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_bytes(b"old")
    executor = Executor(tmp_path, FakeSource({"p.md": b"new"}, lie=True))
    [outcome] = _outcomes(executor, (Set(_node("p.md", b"new")),))
    assert isinstance(outcome, FetchFailed) and "hash mismatch" in outcome.message
    assert (tmp_path / "p.md").read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_batch_is_installed_in_batches_and_built(tmp_path: Path) -> None:
    files = {f"{i}.md": f"# Post {i}\n".encode() for i in range(23)}
    executor = Executor(tmp_path, FakeSource(files), batch_size=5)
    batches = list(executor.run(tuple(Set(_node(p, d)) for p, d in files.items())))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(o.entry.title for b in batches for o in b) == sorted(
        f"Post {i}" for i in range(23)
    )


@pytest.mark.parametrize(
    "key",
    ["../escape", "/etc/passwd", "a/../../x", "nul\x00byte", "x" * 256, "a//b", "./a"],
)
def test_hostile_paths_touch_nothing(tmp_path: Path, key: str) -> None:
    root = tmp_path / "blog"
    root.mkdir()
    executor = Executor(root, FakeSource({key: b"pwned"}))
    [outcome] = _outcomes(executor, (Set(_node(key, b"pwned")),))
    assert isinstance(outcome, FetchFailed) and not outcome.transient
    assert [p for p in tmp_path.rglob("*") if p != root] == []


def test_a_symlinked_directory_in_the_blog_folder_is_never_written_through(tmp_path: Path) -> None:
    root, outside = tmp_path / "blog", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "d")
    executor = Executor(root, FakeSource({"d/x": b"pwned"}))
    [outcome] = _outcomes(executor, (Set(_node("d/x", b"pwned")),))
    assert isinstance(outcome, FetchFailed) and "not a directory" in outcome.message
    assert list(outside.iterdir()) == []


def test_a_file_where_a_directory_must_be_is_an_error_for_that_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a file")
    executor = Executor(tmp_path, FakeSource({"a/b": b"x"}))
    [outcome] = _outcomes(executor, (Set(_node("a/b", b"x")),))
    assert isinstance(outcome, FetchFailed)
    assert "a file is where a directory must be" in outcome.message


def test_a_directory_move_is_one_rename_that_keeps_inodes(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("f")
    inode = (tmp_path / "x" / "f").stat().st_ino
    executor = Executor(tmp_path, FakeSource({}))
    [outcome] = _outcomes(executor, (Move("x", "y", Kind.DIR, Reason.DIRECTORY),))
    assert outcome == Moved("x", "y", Kind.DIR)
    assert (tmp_path / "y" / "f").stat().st_ino == inode and not (tmp_path / "x").exists()


def test_moves_drops_and_mkdirs_apply_in_plan_order(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("A")
    (tmp_path / "gone").write_text("G")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "junk").write_text("j")
    plan = (
        Drop("gone", Kind.FILE),
        Drop("old", Kind.DIR),
        MakeDir("new", Node("new", Kind.DIR)),
        Move("a", "new/a", Kind.FILE, Reason.HASH),
    )
    _outcomes(Executor(tmp_path, FakeSource({})), plan)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["new", "new/a"]


def test_a_move_whose_source_vanished_is_reported_not_raised(tmp_path: Path) -> None:
    executor = Executor(tmp_path, FakeSource({}))
    [outcome] = _outcomes(executor, (Move("nope", "dst", Kind.FILE, Reason.HASH),))
    assert isinstance(outcome, ActionFailed) and outcome.verb == "move"


def test_sweep_removes_leftover_temporaries(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".~ctl-set-abc").write_text("partial")
    (tmp_path / ".~ctl-move-1").mkdir()
    (tmp_path / "keep.md").write_text("keep")
    assert Executor(tmp_path, FakeSource({})).sweep() == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["d", "keep.md"]


def test_a_holder_whose_staging_was_cleared_by_its_successor_installs_nothing(
    tmp_path: Path,
) -> None:
    """The file-system fence: a stale holder past its lease check still writes nothing."""
    files = {f"{i}.md": f"# Post {i}\n".encode() for i in range(6)}
    successor = Executor(tmp_path, FakeSource({}))

    class TakenOverMidFetch(FakeSource):
        def fetch(self, node: Node, into: BinaryIO) -> None:
            if node.path == "0.md":
                assert successor.clear_staging() == 1  # the successor starts its pass
            super().fetch(node, into)

    stale = Executor(tmp_path, TakenOverMidFetch(files), workers=1)
    outcomes = _outcomes(stale, tuple(Set(_node(p, d)) for p, d in files.items()))
    assert sorted(os.listdir(tmp_path)) == []
    assert len(outcomes) == 6 and all(isinstance(o, FetchFailed) for o in outcomes)


def test_each_install_stages_in_one_directory_that_is_gone_after_the_pass(tmp_path: Path) -> None:
    seen: set[str] = set()

    class Watching(FakeSource):
        def fetch(self, node: Node, into: BinaryIO) -> None:
            seen.update(p.name for p in tmp_path.glob(".~ctl-stage-*"))
            super().fetch(node, into)

    files = {f"d{i}/{i}.md": b"x" for i in range(3)}
    executor = Executor(tmp_path, Watching(files))
    dirs = [MakeDir(f"d{i}", Node(f"d{i}", Kind.DIR)) for i in range(3)]
    plan = (*dirs, *(Set(_node(p, d)) for p, d in files.items()))
    assert all(not isinstance(o, FetchFailed) for o in _outcomes(executor, plan))
    assert len(seen) == 1 and _leftovers(tmp_path) == []


def test_a_file_that_changed_during_its_build_is_not_recorded_as_built(tmp_path: Path) -> None:
    """The build reads the installed file; other bytes than the store expects win later."""
    (tmp_path / "p.md").write_bytes(b"Title: Newer\n\nedited meanwhile\n")
    executor = Executor(tmp_path, FakeSource({}))
    outcome = executor.rebuild(_node("p.md", b"Title: Older\n\nwhat was installed\n"))
    assert isinstance(outcome, Rebuilt) and isinstance(outcome.entry, BuildCrash)
    assert outcome.entry.message == "the file changed during its build; it is built again"


def test_builds_of_a_batch_go_to_the_runner_as_one_batch(tmp_path: Path) -> None:
    batches: list[int] = []

    class Counting(InlineBuilds):
        def run(self, jobs):  # type: ignore[no-untyped-def]
            batches.append(len(jobs))
            return super().run(jobs)

    files = {f"{i}.md": f"# Post {i}\n".encode() for i in range(7)} | {"x.bin": b"\x00"}
    executor = Executor(tmp_path, FakeSource(files), builds=Counting())
    _outcomes(executor, tuple(Set(_node(p, d)) for p, d in files.items()))
    assert batches == [7], "one batch of seven posts; the binary file is no post"
