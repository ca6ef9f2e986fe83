"""The planner on hand-picked cases: each test names the behaviour it pins down.

Every plan is also replayed on the folder model (``strategies.apply_plan``), so
a case that passes is sound, converges, and re-plans to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from strategies import (
    BUILD_ERROR,
    apply_plan,
    digest,
    dir_node,
    file_node,
    folder_of,
    nodes_of,
    synced_after,
    synced_of,
    wanted_folder,
)

from reconcilers.core.machine import State
from reconcilers.core.plan import (
    Build,
    Drop,
    Ignore,
    MakeDir,
    Move,
    Plan,
    Reject,
    Set,
    counts,
)
from reconcilers.core.planner import SyncedNode, classify, guard, plan
from reconcilers.core.renames import InferredMove, Reason
from reconcilers.core.schedule import Scheduler
from reconcilers.core.tree import TEMP_PREFIX, Kind, Node, is_temporary
from reconcilers.errors import UnsafePlan

DIR = (Kind.DIR, None)

Model = Mapping[str, tuple[Kind, str | None]]


def f(content: str) -> tuple[Kind, str | None]:
    return (Kind.FILE, content)


def converge(old: Model, new: Model) -> Plan:
    """Plan ``old`` -> ``new``; check the plan is sound, converges and is final."""
    synced, remote = synced_of(old), nodes_of(new)
    actions = plan(remote, synced)
    assert apply_plan(folder_of(synced), actions) == wanted_folder(remote)
    assert plan(remote, synced_after(remote, actions)) == ()
    return actions


def shape(actions: Plan) -> list[tuple[str, ...]]:
    """A plan as short tuples, temporary names shown as ``TMP``."""

    def name(path: str) -> str:
        return "TMP" if is_temporary(path) else path

    result: list[tuple[str, ...]] = []
    for a in actions:
        if isinstance(a, Move):
            result.append(("move", name(a.src), name(a.dst), a.kind.value))
        elif isinstance(a, Drop):
            result.append(("drop" if a.on_disk else "forget", a.path, a.kind.value))
        else:
            result.append((type(a).__name__.lower(), a.path))
    return result


# -- moves ---------------------------------------------------------------------


def test_swapping_two_files_goes_through_one_temporary_name() -> None:
    actions = converge({"a": f("x"), "b": f("y")}, {"a": f("y"), "b": f("x")})
    assert shape(actions) == [
        ("move", "a", "TMP", "file"),
        ("move", "b", "a", "file"),
        ("move", "TMP", "b", "file"),
    ]
    assert actions[0].dst.startswith(TEMP_PREFIX)  # type: ignore[union-attr]
    assert counts(actions) == {"set": 0, "move": 2, "drop": 0}


def test_three_cycle_parks_one_file_and_moves_the_rest_in_order() -> None:
    old = {"a": f("x"), "b": f("y"), "c": f("post")}
    new = {"a": f("post"), "b": f("x"), "c": f("y")}
    actions = converge(old, new)
    assert len(actions) == 4
    assert sum(is_temporary(a.dst) for a in actions if isinstance(a, Move)) == 1
    assert counts(actions) == {"set": 0, "move": 3, "drop": 0}


def test_chain_a_to_b_to_c_is_ordered_without_a_temporary_name() -> None:
    actions = converge({"a": f("x"), "b": f("y")}, {"b": f("x"), "c": f("y")})
    assert shape(actions) == [("move", "b", "c", "file"), ("move", "a", "b", "file")]


def test_file_moved_onto_an_existing_file_replaces_it_without_a_drop() -> None:
    actions = converge({"a": f("x"), "b": f("y")}, {"b": f("x")})
    assert shape(actions) == [("move", "a", "b", "file")]


def test_directory_rename_is_one_move() -> None:
    old = {"d": DIR, "d/x": f("x"), "d/y": f("y"), "d/s": DIR, "d/s/z": f("post"), "d/e": DIR}
    new = {"e": DIR, "e/x": f("x"), "e/y": f("y"), "e/s": DIR, "e/s/z": f("post"), "e/e": DIR}
    actions = converge(old, new)
    assert actions == (Move("d", "e", Kind.DIR, Reason.DIRECTORY),)
    assert counts(actions) == {"set": 0, "move": 1, "drop": 0}


def test_directory_moved_into_a_sibling_is_one_move() -> None:
    old = {"a": DIR, "a/x": f("x"), "a/y": f("y"), "b": DIR}
    new = {"b": DIR, "b/a": DIR, "b/a/x": f("x"), "b/a/y": f("y")}
    assert shape(converge(old, new)) == [("move", "a", "b/a", "dir")]


def test_nested_directory_move_sends_a_subdirectory_elsewhere_first() -> None:
    old = {
        "a": DIR,
        "a/f1": f("x"),
        "a/f2": f("y"),
        "a/s": DIR,
        "a/s/g1": f("post"),
        "a/s/g2": f("page"),
    }
    new = {"b": DIR, "b/f1": f("x"), "b/f2": f("y"), "t": DIR, "t/g1": f("post"), "t/g2": f("page")}
    assert shape(converge(old, new)) == [("move", "a/s", "t", "dir"), ("move", "a", "b", "dir")]


def test_file_renamed_inside_a_renamed_directory_is_carried_by_the_directory_move() -> None:
    old = {"a": DIR, "a/b": f(""), "a/c": f("x"), "a/d": f("y")}
    new = {"b": DIR, "b/b": f(""), "b/C": f("x"), "b/d": f("y")}
    actions = converge(old, new)
    assert shape(actions) == [
        ("move", "a", "b", "dir"),
        ("move", "b/c", "b/C", "file"),
    ]


def test_renamed_folders_exchanging_files_move_first_and_carry_them() -> None:
    old = {"a": DIR, "b": DIR}
    new = {"A": DIR, "B": DIR}
    for i in range(5):
        old[f"a/{i}"], old[f"b/{i}"] = f(f"a{i}"), f(f"b{i}")
        new[f"A/{i}"], new[f"B/{i}"] = f(f"a{i}"), f(f"b{i}")
    new["B/x"], new["A/y"] = new.pop("A/0"), new.pop("B/0")  # one file each way
    actions = converge(old, new)
    assert not [a for a in shape(actions) if "TMP" in a]
    assert sum(1 for a in shape(actions) if a[0] == "move") == 4


def test_two_directories_merged_into_one_move_one_and_the_files_of_the_other() -> None:
    old = {"c": DIR, "c/1": f("x"), "d": DIR, "d/2": f("y")}
    new = {"x": DIR, "x/1": f("x"), "x/2": f("y")}
    assert shape(converge(old, new)) == [
        ("move", "c", "x", "dir"),
        ("move", "d/2", "x/2", "file"),
        ("drop", "d", "dir"),
    ]


def test_directory_moved_where_a_moved_parent_brings_a_subdirectory_does_not_replace_it() -> None:
    old = {"d": DIR, "d/f": f("x"), "d/s": DIR, "d/s/g": f("y"), "c": DIR, "c/h": f("post")}
    new = {"e": DIR, "e/f": f("x"), "e/s": DIR, "e/s/g": f("y"), "e/s/h": f("post")}
    actions = converge(old, new)
    assert counts(actions)["set"] == 0
    assert ("move", "d", "e", "dir") in shape(actions)


def test_file_becomes_a_directory_at_the_same_path_and_back() -> None:
    there = converge({"a": f("x")}, {"a": DIR, "a/b": f("y")})
    assert shape(there) == [("drop", "a", "file"), ("makedir", "a"), ("set", "a/b")]
    back = converge({"a": DIR, "a/b": f("y")}, {"a": f("x")})
    assert shape(back) == [("drop", "a/b", "file"), ("drop", "a", "dir"), ("set", "a")]


def test_file_moved_into_a_directory_that_takes_its_own_name_is_parked() -> None:
    there = converge({"a": f("x")}, {"a": DIR, "a/a": f("x")})
    assert shape(there) == [
        ("move", "a", "TMP", "file"),
        ("makedir", "a"),
        ("move", "TMP", "a/a", "file"),
    ]
    back = converge({"a": DIR, "a/a": f("x")}, {"a": f("x")})
    assert shape(back) == [
        ("move", "a/a", "TMP", "file"),
        ("drop", "a", "dir"),
        ("move", "TMP", "a", "file"),
    ]


def test_directory_replacing_a_file_that_is_not_moved_drops_the_file_first() -> None:
    old = {"a": DIR, "a/a": f("x"), "A": f("")}
    new = {"A": DIR, "A/a": f("x"), "c": f("")}
    assert shape(converge(old, new)) == [
        ("drop", "A", "file"),
        ("move", "a", "A", "dir"),
        ("set", "c"),
    ]


def test_case_only_rename_of_a_file_is_a_move() -> None:
    actions = converge({"a": f("x")}, {"A": f("x")})
    assert actions == (Move("a", "A", Kind.FILE, Reason.HASH),)


def test_case_only_rename_of_a_directory_is_one_move() -> None:
    actions = converge({"é": DIR, "é/a": f("x")}, {"É": DIR, "É/a": f("x")})
    assert actions == (Move("é", "É", Kind.DIR, Reason.DIRECTORY),)


# -- content: what is fetched, what is moved ----------------------------------


def test_empty_files_are_never_paired_so_a_rename_is_drop_and_set() -> None:
    actions = converge({"a": f("")}, {"b": f("")})
    assert shape(actions) == [("drop", "a", "file"), ("set", "b")]


def test_ambiguous_duplicate_content_stays_drop_and_set() -> None:
    actions = converge({"a": f("x"), "b": f("x")}, {"c": f("x"), "d": f("x")})
    assert shape(actions) == [
        ("drop", "a", "file"),
        ("drop", "b", "file"),
        ("set", "c"),
        ("set", "d"),
    ]
    one_to_two = converge({"a": f("x")}, {"b": f("x"), "c": f("x")})
    assert counts(one_to_two) == {"set": 2, "move": 0, "drop": 1}


def test_edited_file_in_a_renamed_directory_gives_the_move_and_a_set() -> None:
    old = {"d": DIR, "d/x": f("x"), "d/y": f("y"), "d/z": f("post")}
    new = {"e": DIR, "e/x": f("x"), "e/y": f("y"), "e/z": f("page")}
    assert shape(converge(old, new)) == [("move", "d", "e", "dir"), ("set", "e/z")]


def test_unchanged_tree_plans_nothing() -> None:
    model = {"d": DIR, "d/x": f("x"), "e": DIR, "f": f("")}
    assert plan(nodes_of(model), synced_of(model)) == ()


def test_rejected_file_with_unchanged_content_is_settled_and_not_rebuilt() -> None:
    model = {"a": f("x")}
    assert plan(nodes_of(model), synced_of(model, rejected=["a"])) == ()


# -- ignored and rejected nodes -------------------------------------------------


def test_ignored_and_problem_nodes_give_ignore_and_reject_and_replanning_is_idempotent() -> None:
    old = {"d": DIR, "d/x": f("x"), "bad": DIR, "bad/y": f("y")}
    remote = {
        "d": dir_node("d"),
        "d/x": file_node("d/x", "x"),
        "d/.DS_Store": file_node("d/.DS_Store", "junk", ignored=True),
        "cache": dir_node("cache", ignored=True),
        "cache/z": file_node("cache/z", "z"),
        "bad": dir_node("bad", problem="reserved name"),
        "bad/y": file_node("bad/y", "y"),
    }
    synced = synced_of(old)
    actions = plan(remote, synced)
    assert shape(actions) == [
        ("drop", "bad/y", "file"),
        ("drop", "bad", "dir"),
        ("ignore", "cache"),
        ("ignore", "cache/z"),
        ("ignore", "d/.DS_Store"),
        ("reject", "bad"),
        ("reject", "bad/y"),
    ]
    rejects = {a.path: a.message for a in actions if isinstance(a, Reject)}
    assert rejects == {"bad": "reserved name", "bad/y": "its parent 'bad' cannot be installed"}
    assert apply_plan(folder_of(synced), actions) == wanted_folder(remote)
    after = synced_after(remote, actions)
    assert after["bad"].state is State.REJECTED and not after["bad"].on_disk
    assert plan(remote, after) == ()


def test_classify_splits_wanted_ignored_and_invalid() -> None:
    remote = {
        "a": file_node("a", "x"),
        "a/b": file_node("a/b", "y"),
        "orphan/c": file_node("orphan/c", "z"),
        "i": dir_node("i", ignored=True),
        "i/bad": file_node("i/bad", "q", problem="nope"),
    }
    desired = classify(remote)
    assert set(desired.wanted) == {"a"}
    assert set(desired.ignored) == {"i"}
    assert {p: m for p, (_, m) in desired.invalid.items()} == {
        "a/b": "a file ('a') is where a directory must be",
        "orphan/c": "its parent directory 'orphan' is not in the source",
        "i/bad": "nope",
    }


def test_row_with_nothing_installed_and_gone_from_the_remote_is_forgotten() -> None:
    pending = SyncedNode(Node("new.md", Kind.FILE, size=3), State.PENDING)
    actions = plan({}, {"new.md": pending})
    assert actions == (Drop("new.md", Kind.FILE, on_disk=False),)
    assert counts(actions) == {"set": 0, "move": 0, "drop": 0}


# -- retries and builds -----------------------------------------------------------


def failed_row(node: Node, retry_at_ns: int) -> SyncedNode:
    """A file whose fetch of ``node``'s content failed and waits until ``retry_at_ns``."""
    return SyncedNode(
        Node(node.path, Kind.FILE, size=node.size),
        State.FAILED,
        error="timeout",
        retry_at_ns=retry_at_ns,
        failed_hash=node.content_hash,
    )


def test_failed_file_with_retry_in_the_future_is_not_retried() -> None:
    node = file_node("post.md", "x")
    assert plan({"post.md": node}, {"post.md": failed_row(node, 1_000)}, now_ns=999) == ()


def test_failed_file_whose_retry_is_due_is_fetched_again() -> None:
    node = file_node("post.md", "x")
    for now in (1_000, 5_000):
        actions = plan({"post.md": node}, {"post.md": failed_row(node, 1_000)}, now_ns=now)
        assert actions == (Set(node),)


def test_failed_file_whose_remote_content_changed_is_fetched_at_once() -> None:
    failed = failed_row(file_node("post.md", "x"), 1_000)
    edited = file_node("post.md", "y")
    assert plan({"post.md": edited}, {"post.md": failed}, now_ns=0) == (Set(edited),)


def test_building_file_whose_installed_hash_equals_the_remote_gives_build_not_set() -> None:
    node = file_node("post.md", "x")
    row = SyncedNode(node, State.BUILDING)
    actions = plan({"post.md": node}, {"post.md": row})
    assert actions == (Build(node),)
    assert apply_plan(folder_of({"post.md": row}), actions) == wanted_folder({"post.md": node})


def test_building_file_whose_remote_changed_gives_set() -> None:
    row = SyncedNode(file_node("post.md", "x"), State.BUILDING)
    edited = file_node("post.md", "y")
    assert plan({"post.md": edited}, {"post.md": row}) == (Set(edited),)


def test_moved_file_keeps_its_rejected_state_and_is_not_rebuilt() -> None:
    synced = synced_of({"a": f("x")}, rejected=["a"])
    assert synced["a"].error == BUILD_ERROR
    actions = plan(nodes_of({"b": f("x")}), synced)
    assert actions == (Move("a", "b", Kind.FILE, Reason.HASH),)


# -- the guard ----------------------------------------------------------------------


def test_guard_refuses_a_mass_drop_on_an_empty_listing() -> None:
    old = {f"p{i}.md": f(f"post {i}") for i in range(10)}
    actions = plan({}, synced_of(old))
    assert counts(actions)["drop"] == 10
    with pytest.raises(UnsafePlan, match="refusing to drop 10 of 10 files"):
        guard(actions, 10, remote_empty=True, max_share=0.5)


def test_guard_allows_drops_from_a_non_empty_listing_or_under_the_share() -> None:
    old = {f"p{i}.md": f(f"post {i}") for i in range(10)}
    everything = plan({}, synced_of(old))
    guard(everything, 10, remote_empty=False, max_share=0.5)
    some = plan(nodes_of({f"p{i}.md": f(f"post {i}") for i in range(6)}), synced_of(old))
    guard(some, 10, remote_empty=True, max_share=0.5)
    guard((), 0, remote_empty=True, max_share=0.5)


def test_guard_counts_file_drops_only() -> None:
    dirs_only = tuple(Drop(f"d{i}", Kind.DIR) for i in range(5))
    guard(dirs_only, 1, remote_empty=True, max_share=0.1)
    forgets = tuple(Drop(f"p{i}", Kind.FILE, on_disk=False) for i in range(5))
    guard(forgets, 1, remote_empty=True, max_share=0.1)


def test_directory_creation_comes_before_the_files_in_it() -> None:
    actions = converge({}, {"a": DIR, "a/b": DIR, "a/b/c": f("x")})
    assert actions == (
        MakeDir("a", dir_node("a")),
        MakeDir("a/b", dir_node("a/b")),
        Set(file_node("a/b/c", "x")),
    )


def test_ignored_remote_node_is_recorded_once_and_not_again() -> None:
    node = file_node(".DS_Store", "junk", ignored=True)
    assert plan({".DS_Store": node}, {}) == (Ignore(node),)
    row = SyncedNode(Node(".DS_Store", Kind.FILE), State.IGNORED)
    assert plan({".DS_Store": node}, {".DS_Store": row}) == ()


# -- the scheduler on its own ---------------------------------------------------------


def test_a_folder_moved_out_of_a_directory_replaced_by_a_file_keeps_its_files() -> None:
    """Found by Hypothesis: ``a/a -> a`` replaces folder ``a`` while ``a/b -> A/b`` leaves it."""
    old = {"a": DIR, "a/a": f("x"), "a/b": DIR, "a/b/a": f("x"), "b": f("x")}
    new = {"a": f("x"), "A": DIR, "A/b": DIR, "A/b/a": f("x"), "b": f("x")}
    synced = synced_of(old)
    scheduler = Scheduler({p: r.node for p, r in synced.items()}, nodes_of(new), synced)
    scheduler.settle(
        [
            InferredMove("a/a", "a", Kind.FILE, Reason.HASH),
            InferredMove("a/b", "A/b", Kind.DIR, Reason.DIRECTORY),
        ]
    )
    assert not any(isinstance(a, Drop) and a.path == "a/b/a" for a in scheduler.actions)
    assert apply_plan(folder_of(synced), scheduler.actions) == wanted_folder(nodes_of(new))


def test_scheduler_drops_what_was_not_moved_out_of_a_directory_replaced_by_a_move() -> None:
    old = {"d": DIR, "d/s": DIR, "d/s/g": f("y"), "c": DIR, "c/h": f("post")}
    new = {"e": DIR, "e/s": DIR, "e/s/g": f("y"), "e/s/h": f("post")}
    synced = synced_of(old)
    scheduler = Scheduler({p: r.node for p, r in synced.items()}, nodes_of(new), synced)
    landed = scheduler.settle(
        [
            InferredMove("d", "e", Kind.DIR, Reason.DIRECTORY),
            InferredMove("c", "e/s", Kind.DIR, Reason.DIRECTORY),
        ]
    )
    assert {dest: origin for dest, (origin, _) in landed.items()} == {
        "e": "d",
        "e/s": "c",
        "e/s/h": "c/h",
    }
    assert apply_plan(folder_of(synced), scheduler.actions) == {
        "e": DIR,
        "e/s": DIR,
        "e/s/h": (Kind.FILE, digest("post")),
    }


def test_scheduler_never_parks_a_parked_move_again() -> None:
    # b/a -> A and A -> b (a file replacing the directory b): b/a leaves b through the root.
    actions = converge({"b": DIR, "b/a": f("x"), "A": f("y")}, {"A": f("x"), "b": f("y")})
    assert shape(actions) == [
        ("move", "b/a", "TMP", "file"),
        ("drop", "b", "dir"),
        ("move", "A", "b", "file"),
        ("move", "TMP", "A", "file"),
    ]
    assert "/" not in actions[0].dst  # type: ignore[union-attr]
