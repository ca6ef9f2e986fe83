"""The benchmarks must keep running: every scenario at smoke size, correctness only.

Each scenario already raises when a tool's destination did not converge to the
source; these tests run them small and check the few figures whose meaning is
not speed (bytes copied, moves found, rows present). Never assert a timing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import dirrename, local, memory, renames, report
from bench import dropbox as dbx
from bench.trees import depth_histogram, make_tree, tree_files

needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> local.Tree:
    return local.prepare(tmp_path_factory.mktemp("local"), 1_000)


def test_trees_are_deterministic_nested_and_one_tenth_posts(tmp_path: Path) -> None:
    assert tree_files(2_000) == tree_files(2_000)
    make_tree(tmp_path, 2_000)
    assert set(depth_histogram(tmp_path)) == {1, 2, 3, 4, 5}
    posts = sum(1 for name in tree_files(2_000) if name.endswith(".md"))
    assert 150 < posts < 250


@needs_rsync
def test_s1_initial_sync_converges(tree: local.Tree) -> None:
    rows = local.initial_sync(tree, 1)
    assert {len(r.samples) for r in rows.values()} == {1}
    assert tree.data is not None and tree.rsync_copy is not None


@needs_rsync
def test_s2b_noop_pass_does_nothing(tree: local.Tree) -> None:
    rows = local.noop_pass(tree, 1)
    assert rows["controller"].samples and rows["rsync"].samples


@needs_rsync
def test_s3_full_validation_finds_no_drift(tree: local.Tree) -> None:
    rows = local.full_validation(tree, 1)
    assert rows["controller"].peak_rss_mb is not None


@needs_rsync
def test_s5_renamed_folder_is_moved_not_copied(tmp_path: Path) -> None:
    out: dict[str, Any] = dirrename.run(tmp_path, 200, 1, base_files=200)
    assert out["controller_copied"] == 0 and out["controller_moves"] == [1]
    copied = {result.name: n for result, n in out["peers"]}
    assert copied["rsync -a --delete"] > 0  # the inode count sees a real copy
    if "rclone sync --track-renames" in copied:
        assert copied["rclone sync --track-renames"] == 0


def test_s2c_s4_each_watched_edit_is_synced_by_the_daemon(tree: local.Tree) -> None:
    rows = local.watched_edits(tree, 2)
    assert len(rows["latency"].samples) == 2 and len(rows["cpu"].samples) == 2
    assert all(
        p <= lat for p, lat in zip(rows["pass"].samples, rows["latency"].samples, strict=True)
    )


def test_s7_dropbox_first_sync_converges(tmp_path: Path, dropbox_fake: Any) -> None:
    plan = {1: (20, 1), 8: (100, 1), 32: (100, 1)}
    out: dict[str, Any] = dbx.run(tmp_path, plan, (), 1, fake=dropbox_fake)
    assert set(out["s7"]) == {1, 8, 32}
    assert all(r.median > 0 for r in out["s7"].values())


def test_s2a_dropbox_noop_pass_is_one_continue(tmp_path: Path, dropbox_fake: Any) -> None:
    sizes = (200, dbx.Seeded(300))
    out: dict[str, Any] = dbx.run(tmp_path, {}, sizes, 2, fake=dropbox_fake)
    for size in sizes:
        rows = out["s2a"][size]
        assert len(rows["pass"].samples) == 2 and rows["round_trip"].median > 0
    # The seeded blog was checked against a real first sync of the same fake state.
    assert out["seed_check"]["rows"] > 300 and 300 in out["s2a_seeded"]
    edits = out["s4"]  # S4 by webhook runs on the largest blog synced for real
    assert out["s4_files"] == 200
    assert len(edits["latency"].samples) == 2 and len(edits["download"].samples) == 3


def test_s6_rename_inference_finds_the_moves() -> None:
    result = renames.run(2000, 1)
    hashed = next(r for r in result["results"] if r["case"] == "hashed")
    assert hashed["moves"] > 0


def test_s3_memory_seed_equals_a_first_sync_and_validates_clean(tmp_path: Path) -> None:
    """The 1M-file memory run at 1,000 files: the linking seed is checked against a real
    first sync, then a full validation of the seeded blog must find nothing to do."""
    result = memory.run(tmp_path, 1000, 1)
    assert result["checked_rows"] > 300 and result["files"] == 1000
    assert len(result["pass_s"]) == 1 and result["peak_rss_mb"][0] > 0
    page = "\n".join(report.memory_section(result))
    assert "| 1,000 |" in page and "measured apart" in page
