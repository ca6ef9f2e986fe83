"""The rename library's rules beyond content hashes, and its applicable order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    apply_plan,
    content_models,
    derived_models,
    dir_node,
    file_node,
    nodes_of,
    wanted_folder,
)

from reconcilers.core.plan import Set
from reconcilers.core.renames import Inference, InferredMove, Reason, infer_moves
from reconcilers.core.tree import Kind, Node

Model = dict[str, tuple[Kind, str | None]]


def test_same_stable_id_is_a_move_even_without_a_hash() -> None:
    result = infer_moves([Node("a", Kind.FILE, 3, id="id:1")], [Node("z", Kind.FILE, 3, id="id:1")])
    assert result.moves == (InferredMove("a", "z", Kind.FILE, Reason.ID),)
    assert result.drops == () and result.sets == ()


def test_same_id_with_a_new_hash_is_a_move_plus_an_edit() -> None:
    old = Node("a", Kind.FILE, 3, content_hash="h1", id="id:1")
    new = Node("b", Kind.FILE, 4, content_hash="h2", id="id:1")
    result = infer_moves([old], [new])
    assert result.moves == (InferredMove("a", "b", Kind.FILE, Reason.ID, edited=True),)
    assert result.sets == ("b",)


def test_a_folder_with_the_same_id_moves_as_one() -> None:
    removed = [Node("x", Kind.DIR, id="id:d"), file_node("x/f", "f")]
    added = [Node("y", Kind.DIR, id="id:d"), file_node("y/f", "f")]
    assert infer_moves(removed, added).moves == (InferredMove("x", "y", Kind.DIR, Reason.ID),)


def test_a_copy_pairs_the_same_name_and_sets_the_other() -> None:
    result = infer_moves(
        [file_node("x/a.md", "same")],
        [file_node("y/a.md", "same"), file_node("y/b.md", "same")],
        kept=["x", "y"],
    )
    assert [(m.src, m.dst) for m in result.moves] == [("x/a.md", "y/a.md")]
    assert result.sets == ("y/b.md",)


def test_metadata_pairs_only_a_unique_name_size_and_time_match() -> None:
    t = 1_700_000_000_000_000_000
    old = [Node("a/p.jpg", Kind.FILE, 10, t), Node("a/q.jpg", Kind.FILE, 10, t)]
    new = [Node("b/p.jpg", Kind.FILE, 10, t + 1_500_000_000), Node("b/r.jpg", Kind.FILE, 10, t)]
    result = infer_moves(old, new, kept=["a", "b"])
    assert result.moves == (InferredMove("a/p.jpg", "b/p.jpg", Kind.FILE, Reason.METADATA),)
    far = infer_moves([old[0]], [Node("b/p.jpg", Kind.FILE, 10, t + 3_000_000_000)], ["a", "b"])
    assert far.moves == ()


def _infer_soundly(
    old_model: Model, new_model: Model
) -> tuple[list[Node], list[Node], list[str], Inference]:
    """Infer the batch from ``old_model`` to ``new_model``; its steps and sets must rebuild it."""
    old, new = nodes_of(old_model), nodes_of(new_model)
    removed = [n for p, n in old.items() if new.get(p) != n]
    added = [n for p, n in new.items() if old.get(p) != n]
    kept = [p for p in old if p in new and old[p] == new[p]]
    result = infer_moves(removed, added, kept)
    plan = (*result.steps, *(Set(new[p]) for p in result.sets))
    assert apply_plan(wanted_folder(old), plan) == wanted_folder(new)
    return removed, added, kept, result


@pytest.mark.slow
@settings(max_examples=max(settings().max_examples, 500))
@given(st.data())
def test_steps_then_sets_turn_the_old_tree_into_the_new_one(data: st.DataObject) -> None:
    """Soundness of the library on its own: every hard case the generators make."""
    old_model = data.draw(content_models())
    removed, added, kept, result = _infer_soundly(old_model, data.draw(derived_models(old_model)))
    shuffled = infer_moves(
        data.draw(st.permutations(removed)), data.draw(st.permutations(added)), kept
    )
    assert shuffled == result


def test_a_pure_directory_rename_is_exactly_one_step() -> None:
    removed = [dir_node("d"), *(file_node(f"d/{i}", str(i)) for i in range(20))]
    added = [dir_node("e"), *(file_node(f"e/{i}", str(i)) for i in range(20))]
    result = infer_moves(removed, added)
    assert len(result.steps) == 1 and result.sets == () and result.drops == ()


def _nested_tree() -> Model:
    model: Model = {}
    n = 0
    for folder in ["a", "b", "a/b", "a/c", "b/a", "c", "a/b/c"]:
        model[folder] = (Kind.DIR, None)
        for _ in range(3):
            n += 1
            model[f"{folder}/f{n}"] = (Kind.FILE, f"content {n}")
    return model


def _rename_folder(model: Model, src: str, dst: str) -> Model:
    return {
        (dst + p[len(src) :] if p == src or p.startswith(src + "/") else p): v
        for p, v in model.items()
    }


@st.composite
def folder_renames(draw: st.DrawFn) -> Model:
    """Several folder renames between two passes: into, out of and across each other."""
    model = _nested_tree()
    for _ in range(draw(st.integers(2, 9))):
        folders = sorted(p for p, (kind, _) in model.items() if kind is Kind.DIR)
        src = draw(st.sampled_from(folders))
        parents = [""] + [d for d in folders if d != src and not d.startswith(src + "/")]
        parent = draw(st.sampled_from(parents))
        name = draw(st.sampled_from(["a", "b", "c", "x1", "x5", "x8"]))
        dst = f"{parent}/{name}".lstrip("/")
        if dst not in model:
            model = _rename_folder(model, src, dst)
    return model


@pytest.mark.slow
@settings(max_examples=max(settings().max_examples, 500))
@given(folder_renames())
def test_folder_renames_into_each_other_are_applied_in_a_sound_order(new_model) -> None:
    """Found by the SIGKILL test: a carried folder could be moved into its own subtree."""
    _infer_soundly(_nested_tree(), new_model)


def test_a_folder_rebased_into_its_own_subtree_goes_through_a_temporary_name() -> None:
    model = _nested_tree()
    for src, dst in [("b/a", "a/b/c/x8"), ("a", "x5"), ("x5/b/c", "b/a"), ("b", "x5/b/x8")]:
        model = _rename_folder(model, src, dst)
    test_folder_renames_into_each_other_are_applied_in_a_sound_order.hypothesis.inner_test(model)
