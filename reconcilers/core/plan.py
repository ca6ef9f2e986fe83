"""Actions: what a pass does to a blog folder, as plain values.

A plan is an ordered tuple of actions; applying them in order to the folder
(and nothing else) converges it. The executor is the only code that turns them
into system calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconcilers.core.moves import Reason
from reconcilers.core.tree import Kind, Node, is_temporary


@dataclass(frozen=True, slots=True)
class Drop:
    """Remove ``path`` from the folder (``on_disk=False``: forget the row only)."""

    path: str
    kind: Kind
    on_disk: bool = True


@dataclass(frozen=True, slots=True)
class Move:
    """One ``rename(2)``; a directory move carries its whole subtree."""

    src: str
    dst: str
    kind: Kind
    reason: Reason


@dataclass(frozen=True, slots=True)
class MakeDir:
    path: str
    node: Node


@dataclass(frozen=True, slots=True)
class Set:
    """Fetch ``node`` from the source and install it at its path, then build it."""

    node: Node

    @property
    def path(self) -> str:
        return self.node.path


@dataclass(frozen=True, slots=True)
class Build:
    """The right bytes are already installed: only (re)build the entry."""

    node: Node

    @property
    def path(self) -> str:
        return self.node.path


@dataclass(frozen=True, slots=True)
class Ignore:
    """Record an ignored remote node; nothing is mirrored."""

    node: Node

    @property
    def path(self) -> str:
        return self.node.path


@dataclass(frozen=True, slots=True)
class Reject:
    """Record a remote node that cannot be installed (hostile or impossible path)."""

    node: Node
    message: str

    @property
    def path(self) -> str:
        return self.node.path


Action = Drop | Move | MakeDir | Set | Build | Ignore | Reject
Plan = tuple[Action, ...]


def counts(plan: Plan) -> dict[str, int]:
    """Actions by the user-facing verbs (set/move/drop); bookkeeping is not counted."""
    result = {"set": 0, "move": 0, "drop": 0}
    for action in plan:
        if isinstance(action, Set):
            result["set"] += 1
        elif isinstance(action, Move) and not is_temporary(action.src):
            result["move"] += 1
        elif isinstance(action, Drop) and action.on_disk:
            result["drop"] += 1
    return result
