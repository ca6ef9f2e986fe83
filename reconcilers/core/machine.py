"""The per-file state machine.

One ``transitions`` machine defines every legal move of a file's state; the
store persists the state string in the synced-tree row. Rows are not attached
to the machine as models (binding trigger methods onto 100,000 rows costs more
than the sync itself): instead the machine's own event table is read once into
a lookup, and :meth:`FileMachine.advance` applies a trigger to a state through
it. The table is derived from the machine, never written twice, and the
mermaid diagram in ``docs/`` is generated from the same machine.
"""

from __future__ import annotations

import enum
from typing import Any

from transitions import Machine

from reconcilers.errors import ControllerError


class State(enum.Enum):
    PENDING = "pending"
    FETCHING = "fetching"
    BUILDING = "building"
    SYNCED = "synced"
    FAILED = "failed"
    REJECTED = "rejected"
    IGNORED = "ignored"


class Trigger(enum.Enum):
    START_FETCH = "start_fetch"
    FETCHED = "fetched"
    FETCH_FAILED = "fetch_failed"
    BUILT = "built"
    BUILD_FAILED = "build_failed"
    BUILD_CRASHED = "build_crashed"
    REMOTE_CHANGED = "remote_changed"
    MOVED = "moved"
    REBUILD = "rebuild"
    RECOVER = "recover"
    RETRY = "retry"
    REFUSE = "refuse"
    IGNORE = "ignore"
    UNIGNORE = "unignore"


#: States whose file content is installed in the blog folder at its synced hash.
INSTALLED = frozenset({State.SYNCED, State.REJECTED})

_ALL = [s.value for s in State]
_ACTIVE = [s.value for s in State if s is not State.IGNORED]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start_fetch", "source": "pending", "dest": "fetching"},
    {"trigger": "fetched", "source": "fetching", "dest": "building"},
    {"trigger": "fetch_failed", "source": "fetching", "dest": "failed"},
    {"trigger": "built", "source": "building", "dest": "synced"},
    {"trigger": "build_failed", "source": "building", "dest": "rejected"},
    {"trigger": "build_crashed", "source": "building", "dest": "failed"},
    {"trigger": "remote_changed", "source": _ACTIVE, "dest": "pending"},
    {"trigger": "moved", "source": _ACTIVE, "dest": "="},
    # A moved post is built again from its local copy (its path may give its
    # title, date or draft flag); recorded with the move, so a crash before the
    # rebuild leaves it for the next pass.
    {"trigger": "rebuild", "source": ["synced", "rejected"], "dest": "building"},
    {"trigger": "recover", "source": "fetching", "dest": "pending"},
    {"trigger": "recover", "source": "building", "dest": "building"},
    {"trigger": "retry", "source": "failed", "dest": "pending"},
    {"trigger": "refuse", "source": _ACTIVE, "dest": "rejected"},
    {"trigger": "ignore", "source": _ALL, "dest": "ignored"},
    {"trigger": "unignore", "source": "ignored", "dest": "pending"},
]


class IllegalTransition(ControllerError):
    """A trigger was fired from a state that does not allow it (a programming error)."""


class _Probe:
    """The one model the machine drives; rows borrow it through :meth:`advance`."""

    state: str


class FileMachine:
    """The shared machine: ``advance(state, trigger) -> state`` or raise."""

    def __init__(self) -> None:
        self._probe = _Probe()
        self.machine = Machine(
            model=self._probe,
            states=_ALL,
            transitions=TRANSITIONS,
            initial="pending",
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        self._table = self._read_table()

    def _read_table(self) -> dict[tuple[State, Trigger], State]:
        table: dict[tuple[State, Trigger], State] = {}
        for trigger in Trigger:
            for source in State:
                self.machine.set_state(source.value, model=self._probe)
                if not self.machine.get_triggers(source.value).count(trigger.value):
                    continue
                getattr(self._probe, trigger.value)()
                table[(source, trigger)] = State(self._probe.state)
        return table

    def can(self, state: State, trigger: Trigger) -> bool:
        return (state, trigger) in self._table

    def advance(self, state: State, trigger: Trigger, *, path: str | None = None) -> State:
        try:
            return self._table[(state, trigger)]
        except KeyError:
            raise IllegalTransition(
                f"cannot {trigger.value} a file that is {state.value}", path=path
            ) from None

    def edges(self) -> list[tuple[State, Trigger, State]]:
        """Every legal (source, trigger, dest), in a stable order (for the diagram)."""
        return sorted(
            ((s, t, d) for (s, t), d in self._table.items()),
            key=lambda e: (list(State).index(e[0]), list(Trigger).index(e[1])),
        )


MACHINE = FileMachine()


def mermaid(machine: FileMachine = MACHINE) -> str:
    """The state diagram as mermaid text, generated from the machine itself."""
    lines = ["stateDiagram-v2", "    [*] --> pending"]
    for source, trigger, dest in machine.edges():
        lines.append(f"    {source.value} --> {dest.value}: {trigger.value}")
    return "\n".join(lines) + "\n"


def document(machine: FileMachine = MACHINE) -> str:
    """``docs/state-machine.md``: the diagram plus what each state means."""
    meanings = {
        State.PENDING: "the remote has content this file does not have yet",
        State.FETCHING: "its bytes are being fetched into a temporary file",
        State.BUILDING: "its bytes are installed; its entry is being built",
        State.SYNCED: "installed and built: nothing to do",
        State.FAILED: "a transient failure (fetch, crash): retried with backoff",
        State.REJECTED: "a content or path error: not retried until the file changes",
        State.IGNORED: "never mirrored (OS litter, lock files, temporaries)",
    }
    rows = "\n".join(f"| `{s.value}` | {meanings[s]} |" for s in State)
    return (
        "# The per-file state machine\n\n"
        "Generated from `reconcilers/core/machine.py` by `make diagram`; a test fails when "
        "this file is stale.\n\n"
        f"```mermaid\n{mermaid(machine)}```\n\n"
        "| state | meaning |\n|---|---|\n"
        f"{rows}\n"
    )
