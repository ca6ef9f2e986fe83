"""Properties of the planner on random folders and random changes to them.

Every plan is replayed on a model of the folder (see ``strategies.apply_plan``):
each action's precondition must hold when it runs, the result must equal the
remote's wanted nodes, and planning again from the result must do nothing.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from strategies import (
    Scenario,
    apply_plan,
    directory_renames,
    folder_of,
    reorganisations,
    scenarios,
    shuffled,
    synced_after,
    wanted_folder,
)

from reconcilers.core.machine import State
from reconcilers.core.plan import Build, Drop, Ignore, Move, Plan, Reject, Set, counts
from reconcilers.core.planner import plan
from reconcilers.core.tree import Kind, is_temporary

pytestmark = pytest.mark.slow

relaxed = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def describe(actions: Plan) -> None:
    """Show the plan of a failing example, one action a line."""
    note("plan:\n" + "\n".join(f"  {a!r}" for a in actions))


def check_sound_and_converges(scenario: Scenario) -> None:
    actions = plan(scenario.remote, scenario.synced)
    describe(actions)
    result = apply_plan(folder_of(scenario.synced), actions)
    assert result == wanted_folder(scenario.remote)
    again = plan(scenario.remote, synced_after(scenario.remote, actions))
    assert again == ()


@relaxed
@given(scenarios())
def test_plan_is_sound_converges_and_replanning_does_nothing(scenario: Scenario) -> None:
    check_sound_and_converges(scenario)


@relaxed
@given(scenarios(flags=True))
def test_plan_with_ignored_and_problem_nodes_is_sound_and_idempotent(scenario: Scenario) -> None:
    check_sound_and_converges(scenario)


@relaxed
@given(scenarios(flags=True))
def test_every_ignored_or_rejected_remote_node_is_recorded_once(scenario: Scenario) -> None:
    actions = plan(scenario.remote, scenario.synced)
    recorded = Counter(a.path for a in actions if isinstance(a, Ignore | Reject))
    assert all(n == 1 for n in recorded.values())
    flagged = {p for p, n in scenario.remote.items() if n.ignored or n.problem is not None}
    assert flagged <= set(recorded)


@relaxed
@given(scenarios())
def test_unique_content_that_changed_path_is_moved_not_fetched(scenario: Scenario) -> None:
    actions = plan(scenario.remote, scenario.synced)
    describe(actions)
    check_unique_content_is_moved(scenario, actions)


@relaxed
@given(reorganisations())
def test_reorganising_directories_is_sound_and_moves_unique_content(scenario: Scenario) -> None:
    check_sound_and_converges(scenario)
    check_unique_content_is_moved(scenario, plan(scenario.remote, scenario.synced))


def check_unique_content_is_moved(scenario: Scenario, actions: Plan) -> None:
    """No Set for a file whose non-empty content is unique in the old and the new tree."""
    old_files = [n for n in scenario.synced.values() if n.on_disk and n.node.kind is Kind.FILE]
    new_files = [n for n in scenario.remote.values() if n.kind is Kind.FILE]
    olds = Counter((r.node.content_hash, r.node.size) for r in old_files)
    news = Counter((n.content_hash, n.size) for n in new_files)
    sets = {a.path for a in actions if isinstance(a, Set)}
    for row in old_files:
        key = (row.node.content_hash, row.node.size)
        if row.node.size == 0 or olds[key] != 1 or news[key] != 1:
            continue
        (target,) = (n for n in new_files if (n.content_hash, n.size) == key)
        if target.path != row.node.path:
            assert target.path not in sets, f"{row.node.path} -> {target.path} was fetched"


@relaxed
@given(directory_renames())
def test_renaming_one_directory_is_exactly_one_directory_move(scenario: Scenario) -> None:
    src, dst = scenario.notes
    actions = plan(scenario.remote, scenario.synced)
    describe(actions)
    assert len(actions) == 1
    (move,) = actions
    assert isinstance(move, Move)
    assert (move.src, move.dst, move.kind) == (src, dst, Kind.DIR)
    assert counts(actions) == {"set": 0, "move": 1, "drop": 0}


@relaxed
@given(scenarios(flags=True), st.randoms(use_true_random=False))
def test_plan_does_not_depend_on_insertion_order(scenario: Scenario, rnd: random.Random) -> None:
    remote_order, synced_order = sorted(scenario.remote), sorted(scenario.synced)
    expected = plan(
        shuffled(scenario.remote, remote_order), shuffled(scenario.synced, synced_order)
    )
    rnd.shuffle(remote_order)
    rnd.shuffle(synced_order)
    note(f"orders: {remote_order} / {synced_order}")
    actual = plan(shuffled(scenario.remote, remote_order), shuffled(scenario.synced, synced_order))
    assert actual == expected


@relaxed
@given(scenarios(flags=True))
def test_counts_tally_sets_real_moves_and_disk_drops(scenario: Scenario) -> None:
    actions = plan(scenario.remote, scenario.synced)
    tally = counts(actions)
    assert tally["set"] == sum(isinstance(a, Set) for a in actions)
    assert tally["move"] == sum(isinstance(a, Move) and not is_temporary(a.src) for a in actions)
    assert tally["drop"] == sum(isinstance(a, Drop) and a.on_disk for a in actions)
    # A parked source comes back out of its temporary name in the same plan.
    parked = [a.dst for a in actions if isinstance(a, Move) and is_temporary(a.dst)]
    released = [a.src for a in actions if isinstance(a, Move) and is_temporary(a.src)]
    assert sorted(parked) == sorted(released)


@relaxed
@given(scenarios(flags=True))
def test_unbuilt_file_whose_content_is_still_wanted_in_place_is_built_not_fetched(
    scenario: Scenario,
) -> None:
    actions = plan(scenario.remote, scenario.synced)
    wanted = wanted_folder(scenario.remote)
    for path, row in scenario.synced.items():
        if row.state is State.BUILDING and wanted.get(path) == (Kind.FILE, row.node.content_hash):
            assert Build(scenario.remote[path]) in actions
            assert Set(scenario.remote[path]) not in actions
