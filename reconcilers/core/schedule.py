"""Ordering a plan by replaying it on a model of the folder.

The planner decides *what* moves, drops and directories a pass needs; the
scheduler decides *when*. It keeps a model of the folder (path -> kind) and
emits an action only once it can succeed there: a move waits until its target
is free and its parent exists, a directory drop until it is empty, a directory
move until nothing under it is still pending. Chains (a->b->c) resolve by
depth-first waiting; cycles (a<->b) by moving one source to a temporary name.
Because every emitted action was valid on the model, the plan is valid on a
folder that matches the synced tree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from reconcilers.core.moves import InferredMove
from reconcilers.core.plan import Drop, MakeDir, Move
from reconcilers.core.tree import (
    DIR,
    FILE,
    TEMP_PREFIX,
    Kind,
    Node,
    ancestors,
    depth,
    is_within,
    parent_of,
    relocate,
)
from reconcilers.errors import ControllerError


class PlanError(ControllerError):
    """The scheduler could not order a plan: a bug in the planner, never bad input."""


class _HasPath(Protocol):
    @property
    def path(self) -> str: ...


class Scheduler:
    def __init__(
        self, on_disk: Mapping[str, Node], wanted: Mapping[str, Node], reserved: Iterable[str]
    ) -> None:
        self.on_disk = on_disk
        self.wanted = wanted
        self.reserved = set(reserved)
        self.actions: list[Drop | Move | MakeDir] = []
        self.fs: dict[str, Kind] = {}
        self.kids: dict[str, set[str]] = {}
        self.busy: Counter[str] = Counter()
        #: Directory -> the pending paths under it, so a carried directory
        #: rebases its own work without scanning everyone's.
        self._below: dict[str, Counter[str]] = {}
        #: Pending directory moves, shallowest first when sorted by their key.
        self._dir_moves: dict[str, tuple[int, str]] = {}
        self._temp = 0
        self._parked: set[str] = set()

    # -- the folder model -------------------------------------------------

    def _add(self, path: str, kind: Kind) -> None:
        self.fs[path] = kind
        self.kids.setdefault(parent_of(path), set()).add(path)

    def _remove(self, path: str) -> None:
        del self.fs[path]
        self.kids[parent_of(path)].discard(path)

    def _rename(self, src: str, dst: str) -> None:
        kind = self.fs[src]
        if dst in self.fs:
            self._remove(dst)
        self._remove(src)
        self._add(dst, kind)
        if kind is DIR:
            for child in sorted(self.kids.pop(src, set())):
                self._rename_child(child, dst + child[len(src) :])

    def _rename_child(self, src: str, dst: str) -> None:
        kind = self.fs.pop(src)
        self.fs[dst] = kind
        self.kids.setdefault(parent_of(dst), set()).add(dst)
        if kind is DIR:
            for child in sorted(self.kids.pop(src, set())):
                self._rename_child(child, dst + child[len(src) :])

    def _is_dir(self, path: str) -> bool:
        return path == "" or self.fs.get(path) is DIR

    def _put(self, move: Move) -> None:
        self.pending_moves[move.src] = move
        if move.kind is DIR:
            self._dir_moves[move.src] = (depth(move.src), move.src)

    def _take(self, src: str) -> Move:
        self._dir_moves.pop(src, None)
        return self.pending_moves.pop(src)

    def _mark(self, path: str, amount: int) -> None:
        for parent in ancestors(path):
            self.busy[parent] += amount
            below = self._below.setdefault(parent, Counter())
            below[path] += amount
            if below[path] <= 0:
                del below[path]

    # -- deciding what survives ------------------------------------------

    def settle(self, moves: Iterable[InferredMove]) -> dict[str, tuple[str, Node]]:
        """Schedule moves, drops and directory creation; return what lands where.

        The result maps each final path to (original path, node) for every
        installed node that survives the pass (moved or not).
        """
        move_list = list(moves)
        file_moves = {m.src: m.dst for m in move_list if m.kind is FILE}
        dir_moves = {m.src: m.dst for m in move_list if m.kind is DIR}
        claimed = {m.dst for m in move_list}
        file_claimed = set(file_moves.values())
        landed: dict[str, tuple[str, Node]] = {}
        drops: list[Drop] = []
        replaced: set[str] = set()
        for path, node in self.on_disk.items():
            explicit = path in file_moves or path in dir_moves
            dest = file_moves.get(path) or relocate(path, dir_moves)
            target = self.wanted.get(dest)
            if not explicit and dest in claimed:
                # Only a file staying put may be replaced by a file moving onto it.
                if dest != path or node.kind is DIR or dest not in file_claimed:
                    drops.append(Drop(path, node.kind))
                    if node.kind is DIR:
                        replaced.add(path)
            elif target is None or target.kind is not node.kind:
                drops.append(Drop(path, node.kind))
            else:
                landed[dest] = (path, node)
        if replaced:
            # A directory replaced by a move goes with everything not moved out of
            # it, by its own move or by the move of a folder between them.
            for dest, (path, node) in list(landed.items()):
                if path in file_moves or path in dir_moves:
                    continue
                for parent in ancestors(path):
                    if parent in dir_moves:
                        break
                    if parent in replaced:
                        del landed[dest]
                        drops.append(Drop(path, node.kind))
                        break
        mkdirs = sorted(
            (p for p, n in self.wanted.items() if n.kind is DIR and p not in landed),
            key=lambda p: (depth(p), p),
        )
        if drops or move_list or mkdirs:
            drops.sort(key=lambda d: d.path)
            self.fs = {p: n.kind for p, n in self.on_disk.items()}
            for path in self.fs:
                self.kids.setdefault(parent_of(path), set()).add(path)
            self._run(drops, [Move(m.src, m.dst, m.kind, m.reason) for m in move_list], mkdirs)
        return landed

    # -- ordering ----------------------------------------------------------

    def _run(self, drops: list[Drop], moves: list[Move], mkdirs: list[str]) -> None:
        file_drops = [d for d in drops if d.kind is FILE]
        self.dir_drops = sorted(
            (d for d in drops if d.kind is DIR), key=lambda d: (-depth(d.path), d.path)
        )
        for drop in drops:
            self._mark(drop.path, 1)
        for move in moves:
            self._mark(move.src, 1)
        self.pending_moves: dict[str, Move] = {}
        for move in moves:
            self._put(move)
        self.pending_dsts = {m.dst for m in moves}
        self.pending_drops = {d.path for d in drops}
        self.pending_mkdirs = set(mkdirs)
        for drop in file_drops:
            self._emit_drop(drop)
        while self.pending_moves or self.pending_drops or self.pending_mkdirs:
            progressed = False
            for src in sorted(self.pending_moves, key=lambda p: (-depth(p), p)):
                if src in self.pending_moves:
                    progressed |= self._attempt(self.pending_moves[src], set())
            for drop in list(self.dir_drops):
                if drop.path in self.pending_drops and self._drop_ready(drop.path):
                    self._emit_drop(drop)
                    progressed = True
            for path in mkdirs:
                if path in self.pending_mkdirs:
                    progressed |= self._ensure_dir(path)
            if not progressed and not self._carry() and not self._break_cycle():
                raise PlanError(
                    "cannot order the plan: "
                    f"moves {sorted(self.pending_moves)[:10]}, "
                    f"drops {sorted(self.pending_drops)[:10]}, "
                    f"dirs {sorted(self.pending_mkdirs)[:10]}"
                )

    def _emit_drop(self, drop: Drop) -> None:
        self.actions.append(drop)
        self._remove(drop.path)
        self.pending_drops.discard(drop.path)
        self._mark(drop.path, -1)

    def _drop_ready(self, path: str) -> bool:
        return not self.kids.get(path) and self.busy[path] == 0

    def _ensure_dir(self, path: str) -> bool:
        """Make ``path`` exist as a directory now if the model allows it."""
        if self._is_dir(path):
            return False
        if path not in self.pending_mkdirs or path in self.fs or path in self.pending_dsts:
            return False
        if self._leaving_above(path):
            return False
        parent = parent_of(path)
        if not self._is_dir(parent) and not self._ensure_dir(parent):
            return False
        self.actions.append(MakeDir(path, self.wanted[path]))
        self._add(path, DIR)
        self.pending_mkdirs.discard(path)
        return True

    def _attempt(self, move: Move, visiting: set[str]) -> bool:
        """Apply ``move`` once it can succeed, first doing the moves it waits on."""
        if move.src in visiting:
            return False
        visiting.add(move.src)
        if move.dst != move.src and is_within(move.dst, move.src):
            # Into its own subtree (after a carried parent rebased it): only by
            # way of a temporary name, which _break_cycle gives it.
            return False
        if self._leaving_above(move.dst):
            return False
        occupant = self.fs.get(move.dst)
        if occupant is not None and move.dst in self.pending_moves:
            self._attempt(self.pending_moves[move.dst], visiting)
            occupant = self.fs.get(move.dst)
        if occupant is not None and (
            occupant is DIR
            or move.kind is DIR
            or move.dst in self.pending_drops
            or move.dst in self.pending_moves
        ):
            return False
        if move.kind is DIR and self.busy[move.src]:
            return False
        parent = parent_of(move.dst)
        if not self._is_dir(parent) and not self._ensure_dir(parent):
            return False
        self.actions.append(move)
        self._rename(move.src, move.dst)
        self._take(move.src)
        self.pending_dsts.discard(move.dst)
        self._mark(move.src, -1)
        return True

    def _leaving_above(self, path: str) -> bool:
        """A folder above ``path`` is still to move or go: what lands there now would follow it."""
        return any(a in self.pending_moves or a in self.pending_drops for a in ancestors(path))

    def _carry(self) -> bool:
        """Move directories that only wait for work inside them, carrying that work along.

        When renamed folders exchange files (``a/x -> B/x`` while ``a -> A``
        and ``b -> B``), every folder waits for a file inside it and every
        file for its target folder. Moving the folders first and rebasing the
        pending moves and drops under them breaks the deadlock with no extra
        rename (parking each file would cost two).
        """
        carried = False
        while self._carry_one():
            carried = True
        return carried

    def _carry_one(self) -> bool:
        """Carry the shallowest directory that can go, then rebase what was under it.

        One at a time: the next decision must see the pending work where the
        last carry put it (a folder may now sit under a path that is leaving).
        """
        for src in sorted(self._dir_moves, key=self._dir_moves.__getitem__):
            move = self.pending_moves[src]
            if not self.busy[src] or move.dst in self.fs:
                continue
            if is_within(move.dst, src) or self._leaving_above(move.dst):
                continue
            parent = parent_of(move.dst)
            if not self._is_dir(parent) and not self._ensure_dir(parent):
                continue
            self.actions.append(move)
            self._rename(src, move.dst)
            self._take(src)
            self.pending_dsts.discard(move.dst)
            self._mark(src, -1)
            self._rebase({src: move.dst})
            return True
        return False

    def _rebase(self, carried: Mapping[str, str]) -> None:
        """Pending work under a carried directory now happens where it went."""
        under = sorted({p for src in carried for p in self._below.get(src, ())})
        moves = [p for p in under if p in self.pending_moves]
        drops = [p for p in under if p in self.pending_drops]
        for old in moves:
            new = relocate(old, carried)
            pending = self._take(old)
            self._put(Move(new, pending.dst, pending.kind, pending.reason))
            self._mark(old, -1)
            self._mark(new, 1)
            if old in self._parked:
                self._parked.discard(old)
                self._parked.add(new)
        for old in drops:
            new = relocate(old, carried)
            self.pending_drops.discard(old)
            self.pending_drops.add(new)
            self._mark(old, -1)
            self._mark(new, 1)
        self.dir_drops = [Drop(relocate(d.path, carried), d.kind) for d in self.dir_drops]

    def _temporary(self, near: str) -> str:
        parent = parent_of(near)
        while True:
            self._temp += 1
            name = f"{TEMP_PREFIX}move-{self._temp}"
            path = f"{parent}/{name}" if parent else name
            if path not in self.fs and path not in self.wanted and path not in self.reserved:
                return path

    def _break_cycle(self) -> bool:
        """Park a blocked move's source under a temporary name.

        A cycle (a<->b) parks one source next to itself. A source in the way
        parks at the root: one inside a directory that must move or go first
        (a->b with a/c->b/C; a/a->a), or a file where a directory must appear
        (a->a/a). A parked source is never parked again, so this terminates.
        """
        leaving = [s for s, m in self.pending_moves.items() if m.kind is DIR]
        leaving += self.pending_drops
        needed = [*self.pending_dsts, *self.pending_mkdirs]

        def in_the_way(src: str) -> bool:
            return any(src != d and is_within(src, d) for d in leaving) or any(
                p != src and is_within(p, src) for p in needed
            )

        movable = [
            src
            for src, move in sorted(self.pending_moves.items())
            if src not in self._parked and (move.kind is FILE or not self.busy[src])
        ]
        for src in movable:
            if self.pending_moves[src].dst in self.pending_moves:
                self._park(self.pending_moves[src], root=in_the_way(src))
                return True
        for src in movable:
            if in_the_way(src):
                self._park(self.pending_moves[src], root=True)
                return True
        return False

    def _park(self, move: Move, *, root: bool) -> None:
        temp = self._temporary("" if root else move.src)
        self._parked.add(temp)
        self.actions.append(Move(move.src, temp, move.kind, move.reason))
        self._rename(move.src, temp)
        self._mark(move.src, -1)
        self._take(move.src)
        self._put(Move(temp, move.dst, move.kind, move.reason))
        self._mark(temp, 1)


__all__ = ["PlanError", "Scheduler"]
