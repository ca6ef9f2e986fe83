"""Rename inference: which removals and additions of a change batch are moves.

Public API: :func:`infer_moves` and the values it returns (:class:`Inference`,
:class:`InferredMove`, :class:`Reason`). It is pure and deterministic — the
same input in any order gives the same output — so it can be used on its own,
outside the controller (see docs/renames.md).

Rules, in order (each pairs only what it can decide; the rest falls through):

1. **stable id**: the same id on one removed and one added node is a move (of a
   file or a folder); for a file whose hash differs it is a move plus an edit;
2. **exact content**: files grouped by (hash, size); one removal and one
   addition pair directly; larger groups pair by minimum cost (same name, then
   same parent, then closest path) where the best choice is unique on both
   sides; empty files never pair;
3. **metadata** (files with neither hash nor id): a unique match on name,
   size and modification time within 2 s;
4. **directories**: every file move votes ``old dir -> new dir`` (and for the
   parents while the trailing names match). A removed directory (not kept)
   becomes one move when one target has at least 80% of its votes, is an
   added directory and is not inside it; the file moves it covers fold into
   it and the exceptions stay their own actions.

The result also carries ``steps``: an order in which drops, moves (through
temporary names for swaps and cycles) and directory creation can be applied
to the old tree; after them, writing the ``sets`` gives exactly the new tree.
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reconcilers.core import pairing
from reconcilers.core.moves import InferredMove, Reason
from reconcilers.core.plan import Drop, MakeDir, Move
from reconcilers.core.schedule import Scheduler
from reconcilers.core.tree import DIR, FILE, Node, ancestors, is_within, relocate

DIRECTORY_VOTE_SHARE = 0.8

Step = Drop | Move | MakeDir


@dataclass(frozen=True, slots=True)
class Inference:
    """What a change batch means.

    ``moves``: inferred moves with their reasons (directory moves fold the
    file moves they cover); ``drops``: removed paths that go away; ``sets``:
    added paths whose content must be fetched (new files, and moved files that
    were also edited); ``steps``: an applicable order (empty when not asked for).
    """

    moves: tuple[InferredMove, ...]
    drops: tuple[str, ...]
    sets: tuple[str, ...]
    steps: tuple[Step, ...] = ()


def _votes(file_moves: Iterable[InferredMove]) -> dict[str, Counter[str]]:
    # Files of one folder vote alike: count each (old folder, new folder) once.
    folders = Counter((m.src.rpartition("/")[0], m.dst.rpartition("/")[0]) for m in file_moves)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for (src, dst), weight in folders.items():
        while src and src != dst:
            votes[src][dst] += weight
            src_head, _, src_name = src.rpartition("/")
            dst_head, _, dst_name = dst.rpartition("/")
            if src_name != dst_name or not dst:
                break
            src, dst = src_head, dst_head
    return votes


def _directory_moves(
    removed_dirs: Collection[str], added_dirs: Collection[str], file_moves: list[InferredMove]
) -> list[InferredMove]:
    candidates: dict[str, tuple[int, str]] = {}
    for src, counter in sorted(_votes(file_moves).items()):
        if src not in removed_dirs:
            continue
        target, count = min(counter.items(), key=lambda item: (-item[1], item[0]))
        if count < DIRECTORY_VOTE_SHARE * sum(counter.values()):
            continue
        if target not in added_dirs or is_within(target, src):
            continue
        # Two directories cannot both become one (a merge): the most votes win.
        if target not in candidates or (-count, src) < candidates[target]:
            candidates[target] = (-count, src)
    chosen = sorted(
        (InferredMove(s, t, DIR, Reason.DIRECTORY) for t, (_, s) in candidates.items()),
        key=lambda m: m.src,
    )
    # Nor can a directory become one that a parent's move already brings there.
    by_src = {m.src: m.dst for m in chosen}
    implied = {
        relocate(d, by_src)
        for d in removed_dirs
        if d not in by_src and any(a in by_src for a in ancestors(d))
    }
    return [m for m in chosen if m.dst not in implied]


def _below(dir_moves: dict[str, str]) -> Callable[[str], str]:
    """Where a path lands by the moves of its proper ancestors.

    Memoised per parent folder: a batch has far fewer folders than files.
    """
    landing: dict[str, str] = {}

    def where(path: str) -> str:
        head, _, name = path.rpartition("/")
        if not head:
            return path
        base = landing.get(head)
        if base is None:
            base = landing[head] = relocate(head, dir_moves)
        return f"{base}/{name}"

    return where


def _fold(moves: list[InferredMove]) -> list[InferredMove]:
    """Drop moves a directory move above them already performs."""
    dirs = {m.src: m.dst for m in moves if m.kind is DIR}
    if not dirs:
        return moves
    where = _below(dirs)
    return [m for m in moves if where(m.src) != m.dst]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of one inference.

    An inference keeps hundreds of thousands of small objects alive until it
    returns, and none of them form cycles; the collector would walk them again
    and again (half the time of a 100,000-move batch) and free nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def infer_moves(
    removed: Iterable[Node],
    added: Iterable[Node],
    kept: Collection[str] = (),
    *,
    order: bool = True,
) -> Inference:
    """Infer the file and directory moves of one change batch.

    ``removed``: nodes that left their path (a path whose content changed may
    appear in both lists); ``added``: nodes that appeared; ``kept``: paths that
    exist before and after (a directory that still exists never moves away).
    """
    with _collector_paused():
        return _infer(removed, added, kept, order)


def _infer(
    removed: Iterable[Node], added: Iterable[Node], kept: Collection[str], order: bool
) -> Inference:
    old = sorted(removed, key=lambda n: n.path)
    new = sorted(added, key=lambda n: n.path)
    kept_set = set(kept)
    moves = [m for m in pairing.by_id(old, new) if m.src not in kept_set]
    for rule in (pairing.by_content, pairing.by_metadata):
        used_old = {m.src for m in moves}
        used_new = {m.dst for m in moves}
        moves += rule(
            [n for n in old if n.path not in used_old], [n for n in new if n.path not in used_new]
        )
    moved_dirs = {m.src for m in moves if m.kind is DIR}
    target_dirs = {m.dst for m in moves if m.kind is DIR}
    staying = kept_set | moved_dirs
    removed_dirs = {n.path for n in old if n.kind is DIR and n.path not in staying}
    added_dirs = {n.path for n in new if n.kind is DIR and n.path not in target_dirs}
    moves += _directory_moves(removed_dirs, added_dirs, [m for m in moves if m.kind is FILE])
    moves = sorted(_fold(moves), key=lambda m: (-m.src.count("/"), m.src))

    file_dst = {m.src: m.dst for m in moves if m.kind is FILE}
    dir_dst = {m.src: m.dst for m in moves if m.kind is DIR}
    new_by_path = {n.path: n for n in new}
    where = _below(dir_dst)
    drops: list[str] = []
    arrived: set[str] = set()
    for node in old:
        dest = file_dst.get(node.path) or dir_dst.get(node.path) or where(node.path)
        landing = new_by_path.get(dest) if dest != node.path else None
        if landing is None or landing.kind is not node.kind:
            drops.append(node.path)
        elif node.kind is DIR or landing.content_hash == node.content_hash:
            arrived.add(dest)
    sets = tuple(n.path for n in new if n.kind is FILE and n.path not in arrived)
    steps: tuple[Step, ...] = ()
    if order:
        steps = _order(moves, old, new, kept_set)
    return Inference(moves=tuple(moves), drops=tuple(drops), sets=sets, steps=steps)


def _order(
    moves: list[InferredMove], old: list[Node], new: list[Node], kept: set[str]
) -> tuple[Step, ...]:
    """Replay the batch on a model of the old tree to find an applicable order.

    Directories the batch does not mention but that must exist (parents of its
    paths) are taken as kept when they hold an old path, as created otherwise.
    """
    listed = {n.path for n in old} | {n.path for n in new} | kept
    old_parents = {a for n in old for a in ancestors(n.path)}
    new_parents = {a for n in new for a in ancestors(n.path)}
    parents = old_parents | new_parents
    kept_nodes = {p: Node(p, DIR if p in parents else FILE) for p in kept}
    kept_nodes.update({p: Node(p, DIR) for p in old_parents - listed})
    created = {p: Node(p, DIR) for p in new_parents - old_parents - listed}
    on_disk = {**kept_nodes, **{n.path: n for n in old}}
    wanted = {**kept_nodes, **created, **{n.path: n for n in new}}
    scheduler = Scheduler(on_disk, wanted, ())
    scheduler.settle(moves)
    return tuple(scheduler.actions)


__all__ = ["Inference", "InferredMove", "Reason", "Step", "infer_moves", "relocate"]
