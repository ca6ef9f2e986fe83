"""The per-file state machine: its lookup table, its errors and its diagram."""

from __future__ import annotations

import itertools

import pytest
from transitions import Machine, MachineError

from reconcilers.core.machine import (
    MACHINE,
    TRANSITIONS,
    FileMachine,
    IllegalTransition,
    State,
    Trigger,
    mermaid,
)

PAIRS = list(itertools.product(State, Trigger))


class _Model:
    state: str


def drive(state: State, trigger: Trigger) -> State | None:
    """Fire ``trigger`` from ``state`` on a fresh ``transitions`` machine; None if refused."""
    model = _Model()
    Machine(
        model=model,
        states=[s.value for s in State],
        transitions=TRANSITIONS,
        initial=state.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    fire = getattr(model, trigger.value, None)
    if fire is None:
        return None
    try:
        fire()
    except MachineError:
        return None
    return State(model.state)


@pytest.mark.parametrize(("state", "trigger"), PAIRS, ids=lambda v: v.value)
def test_table_matches_driving_a_real_transitions_machine(state: State, trigger: Trigger) -> None:
    expected = drive(state, trigger)
    assert MACHINE.can(state, trigger) is (expected is not None)
    if expected is not None:
        assert MACHINE.advance(state, trigger) is expected


@pytest.mark.parametrize(("state", "trigger"), PAIRS, ids=lambda v: v.value)
def test_every_pair_not_in_the_table_raises_illegal_transition(
    state: State, trigger: Trigger
) -> None:
    if MACHINE.can(state, trigger):
        MACHINE.advance(state, trigger)
        return
    with pytest.raises(IllegalTransition, match=f"cannot {trigger.value} a file") as info:
        MACHINE.advance(state, trigger, path="posts/a.md")
    assert info.value.path == "posts/a.md"


def test_every_trigger_is_declared_in_the_transitions() -> None:
    assert {t["trigger"] for t in TRANSITIONS} == {t.value for t in Trigger}


def test_the_table_has_legal_and_illegal_pairs_and_the_happy_path() -> None:
    legal = [pair for pair in PAIRS if MACHINE.can(*pair)]
    assert 0 < len(legal) < len(PAIRS)
    state = State.PENDING
    for trigger in (Trigger.START_FETCH, Trigger.FETCHED, Trigger.BUILT):
        state = MACHINE.advance(state, trigger)
    assert state is State.SYNCED


def test_moved_keeps_the_state_and_ignore_works_from_every_state() -> None:
    for state in State:
        assert MACHINE.advance(state, Trigger.IGNORE) is State.IGNORED
        if state is not State.IGNORED:
            assert MACHINE.advance(state, Trigger.MOVED) is state


def test_a_new_machine_reads_the_same_table() -> None:
    fresh = FileMachine()
    assert fresh.edges() == MACHINE.edges()


def test_edges_are_every_table_entry_once() -> None:
    edges = MACHINE.edges()
    assert len(edges) == len(set(edges))
    assert {(s, t) for s, t, _ in edges} == {pair for pair in PAIRS if MACHINE.can(*pair)}
    for source, trigger, dest in edges:
        assert MACHINE.advance(source, trigger) is dest


def test_mermaid_contains_every_edge() -> None:
    text = mermaid()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> pending" in lines
    for source, trigger, dest in MACHINE.edges():
        assert f"    {source.value} --> {dest.value}: {trigger.value}" in lines
    assert len(lines) == 2 + len(MACHINE.edges())
    assert text.endswith("\n")
