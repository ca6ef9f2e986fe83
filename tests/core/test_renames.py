"""Rename inference on its own: pairing by content, directory votes, determinism."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from strategies import dir_node, file_node

from reconcilers.core.renames import Inference, InferredMove, Reason, infer_moves
from reconcilers.core.tree import Kind, Node, is_within


def infer(removed, added, kept=()):  # type: ignore[no-untyped-def]
    """The inference without its application order (tested on its own below)."""
    return infer_moves(removed, added, kept, order=False)


def move(src: str, dst: str, kind: Kind = Kind.FILE) -> InferredMove:
    return InferredMove(src, dst, kind, Reason.HASH if kind is Kind.FILE else Reason.DIRECTORY)


def test_unique_non_empty_content_pairs_into_a_hash_move() -> None:
    result = infer([file_node("a", "x")], [file_node("b", "x")])
    assert result == Inference(moves=(move("a", "b"),), drops=(), sets=())


def test_same_hash_but_different_size_is_not_a_move() -> None:
    old = Node("a", Kind.FILE, size=1, content_hash="h")
    new = Node("b", Kind.FILE, size=2, content_hash="h")
    assert infer([old], [new]).moves == ()


def test_files_without_a_hash_are_never_paired() -> None:
    old = Node("a", Kind.FILE, size=3)
    new = Node("b", Kind.FILE, size=3)
    assert infer([old], [new]) == Inference(moves=(), drops=("a",), sets=("b",))


def test_empty_files_are_never_paired() -> None:
    result = infer([file_node("a", "")], [file_node("b", "")])
    assert result == Inference(moves=(), drops=("a",), sets=("b",))


def test_ambiguous_duplicate_content_is_not_paired() -> None:
    two_to_two = infer(
        [file_node("a", "x"), file_node("b", "x")], [file_node("c", "x"), file_node("d", "x")]
    )
    assert two_to_two == Inference(moves=(), drops=("a", "b"), sets=("c", "d"))
    one_to_two = infer([file_node("a", "x")], [file_node("c", "x"), file_node("d", "x")])
    assert one_to_two.moves == ()
    two_to_one = infer([file_node("a", "x"), file_node("b", "x")], [file_node("c", "x")])
    assert two_to_one.moves == ()


def test_directory_votes_fold_file_moves_into_one_directory_move() -> None:
    removed = [dir_node("d"), file_node("d/x", "x"), file_node("d/y", "y")]
    added = [dir_node("e"), file_node("e/x", "x"), file_node("e/y", "y")]
    assert infer(removed, added) == Inference(moves=(move("d", "e", Kind.DIR),), drops=(), sets=())


def test_directory_move_needs_eighty_percent_of_the_votes() -> None:
    contents = ["p", "q", "r", "s", "t"]
    removed = [dir_node("d"), *(file_node(f"d/{c}", c) for c in contents)]

    def added(to_e: int) -> list[Node]:
        dirs = [dir_node("e"), dir_node("f")]
        return dirs + [
            file_node(f"{'e' if i < to_e else 'f'}/{c}", c) for i, c in enumerate(contents)
        ]

    four_of_five = infer(removed, added(4))
    assert four_of_five.moves == (move("d/t", "f/t"), move("d", "e", Kind.DIR))
    three_of_five = infer(removed, added(3))
    assert all(m.kind is Kind.FILE for m in three_of_five.moves)
    assert len(three_of_five.moves) == 5


def test_a_kept_directory_is_never_moved_away() -> None:
    removed = [file_node("d/x", "x"), file_node("d/y", "y")]
    added = [dir_node("e"), file_node("e/x", "x"), file_node("e/y", "y")]
    result = infer([dir_node("d"), *removed], added, kept=["d"])
    assert result.moves == (move("d/x", "e/x"), move("d/y", "e/y"))


def test_a_directory_is_not_moved_into_itself() -> None:
    removed = [dir_node("d"), file_node("d/x", "x")]
    added = [dir_node("d/s"), file_node("d/s/x", "x")]
    result = infer(removed, added)
    assert result.moves == (move("d/x", "d/s/x"),)


def test_subdirectory_moved_with_its_parent_is_covered_by_the_parent_move() -> None:
    removed = [dir_node("d"), dir_node("d/s"), file_node("d/x", "x"), file_node("d/s/y", "y")]
    added = [dir_node("e"), dir_node("e/s"), file_node("e/x", "x"), file_node("e/s/y", "y")]
    assert infer(removed, added).moves == (move("d", "e", Kind.DIR),)


def test_subdirectory_sent_elsewhere_is_its_own_move_applied_first() -> None:
    removed = [dir_node("a"), dir_node("a/s"), file_node("a/f", "x"), file_node("a/s/g", "y")]
    added = [dir_node("b"), dir_node("t"), file_node("b/f", "x"), file_node("t/g", "y")]
    assert infer(removed, added).moves == (
        move("a/s", "t", Kind.DIR),
        move("a", "b", Kind.DIR),
    )


def test_two_directories_merged_into_one_give_one_directory_move() -> None:
    removed = [dir_node("c"), file_node("c/1", "x"), dir_node("d"), file_node("d/2", "y")]
    added = [dir_node("x"), file_node("x/1", "x"), file_node("x/2", "y")]
    result = infer(removed, added)
    assert result.moves == (move("d/2", "x/2"), move("c", "x", Kind.DIR))
    assert result.drops == ("d",)


def test_edited_file_in_a_moved_directory_is_a_set_at_the_new_path() -> None:
    removed = [dir_node("d"), file_node("d/x", "x"), file_node("d/y", "y"), file_node("d/z", "a")]
    added = [dir_node("e"), file_node("e/x", "x"), file_node("e/y", "y"), file_node("e/z", "b")]
    result = infer(removed, added)
    assert result.moves == (move("d", "e", Kind.DIR),)
    assert result.sets == ("e/z",)


# -- properties -------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "A", "d/a", "d/b", "e/a", "e/d/a"])
CONTENT = st.sampled_from(["", "x", "y", "xy"])


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Node], list[Node]]:
    """Removed and added nodes (distinct paths within each side)."""

    def side() -> list[Node]:
        files = draw(st.dictionaries(NAMES, CONTENT, max_size=6))
        nodes = [file_node(p, c) for p, c in files.items()]
        dirs = {p.rpartition("/")[0] for p in files} - {""}
        return nodes + [dir_node(d) for d in dirs if d not in files]

    return side(), side()


@given(batches(), st.randoms(use_true_random=False))
def test_inference_does_not_depend_on_input_order(
    batch: tuple[list[Node], list[Node]], rnd: random.Random
) -> None:
    removed, added = batch
    expected = infer(removed, added)
    shuffled_removed, shuffled_added = list(removed), list(added)
    rnd.shuffle(shuffled_removed)
    rnd.shuffle(shuffled_added)
    assert infer(shuffled_removed, shuffled_added) == expected


@given(batches())
def test_moves_go_from_removed_to_added_paths_one_to_one(
    batch: tuple[list[Node], list[Node]],
) -> None:
    removed, added = batch
    result = infer(removed, added)
    kinds = {n.path: n.kind for n in removed}
    new_kinds = {n.path: n.kind for n in added}
    srcs = [m.src for m in result.moves]
    dsts = [m.dst for m in result.moves]
    assert len(set(srcs)) == len(srcs)
    assert len(set(dsts)) == len(dsts)
    for m in result.moves:
        assert kinds[m.src] is m.kind and new_kinds[m.dst] is m.kind
        assert not (m.kind is Kind.DIR and is_within(m.dst, m.src))
    # Deepest source first: the order in which the moves can be applied.
    depths = [m.src.count("/") for m in result.moves]
    assert depths == sorted(depths, reverse=True)


@given(batches())
def test_empty_files_never_move(batch: tuple[list[Node], list[Node]]) -> None:
    removed, _ = batch
    sizes = {n.path: n.size for n in removed}
    for m in infer(*batch).moves:
        if m.kind is Kind.FILE:
            assert sizes[m.src] > 0
