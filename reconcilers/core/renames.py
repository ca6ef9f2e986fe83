"""Rename inference: which removals and additions of a change batch are moves.

Public API: :func:`infer_moves`. It is pure and deterministic (the same input
in any order gives the same output) so it can be used on its own, outside the
controller, and property-tested exhaustively.

Rules, in order:

1. exact content: removed and added files are grouped by (content hash, size);
   a group with exactly one removal and one addition is a move. Larger groups
   stay drops and sets (several candidates means no pairing), and empty files
   are never paired, because identical boilerplate says nothing about identity;
2. directories: every file move votes ``old dir -> new dir`` (and for each
   parent while the trailing names match). A removed directory becomes one
   move when one target wins at least 80% of its votes, the target is an added
   directory and not inside the source. The file moves it covers are folded
   into it; the rest stay as their own moves.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from reconcilers.core.tree import Kind, Node, is_within, parent_of

DIRECTORY_VOTE_SHARE = 0.8


class Reason(enum.Enum):
    """Why a move was inferred."""

    ID = "id"
    HASH = "hash"
    DIRECTORY = "directory"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class InferredMove:
    src: str
    dst: str
    kind: Kind
    reason: Reason


@dataclass(frozen=True, slots=True)
class Inference:
    """Moves (deepest source first: the order in which they can be applied),
    plus the removed paths that are not moved and the added paths not covered."""

    moves: tuple[InferredMove, ...]
    drops: tuple[str, ...]
    sets: tuple[str, ...]


def _pair_by_content(removed: list[Node], added: list[Node]) -> list[InferredMove]:
    groups: dict[tuple[str, int], tuple[list[Node], list[Node]]] = defaultdict(lambda: ([], []))
    for node in removed:
        if node.kind is Kind.FILE and node.content_hash and node.size > 0:
            groups[(node.content_hash, node.size)][0].append(node)
    for node in added:
        if node.kind is Kind.FILE and node.content_hash and node.size > 0:
            groups[(node.content_hash, node.size)][1].append(node)
    moves = []
    for olds, news in groups.values():
        if len(olds) == 1 and len(news) == 1:
            moves.append(InferredMove(olds[0].path, news[0].path, Kind.FILE, Reason.HASH))
    return moves


def _votes(file_moves: Iterable[InferredMove]) -> dict[str, Counter[str]]:
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for move in file_moves:
        src, dst = parent_of(move.src), parent_of(move.dst)
        while src and src != dst:
            votes[src][dst] += 1
            src_head, _, src_name = src.rpartition("/")
            dst_head, _, dst_name = dst.rpartition("/")
            if src_name != dst_name or not dst:
                break
            src, dst = src_head, dst_head
    return votes


def _directory_moves(
    removed_dirs: set[str],
    added_dirs: set[str],
    file_moves: list[InferredMove],
) -> list[InferredMove]:
    candidates: dict[str, tuple[int, str]] = {}
    for src, counter in sorted(_votes(file_moves).items()):
        if src not in removed_dirs:
            continue
        total = sum(counter.values())
        target, count = min(counter.items(), key=lambda item: (-item[1], item[0]))
        if count < DIRECTORY_VOTE_SHARE * total:
            continue
        if target not in added_dirs or is_within(target, src):
            continue
        # Two directories cannot both become one (a merge): the most votes win.
        if target not in candidates or (-count, src) < candidates[target]:
            candidates[target] = (-count, src)
    chosen = sorted(
        (
            InferredMove(src, target, Kind.DIR, Reason.DIRECTORY)
            for target, (_, src) in candidates.items()
        ),
        key=lambda m: m.src,
    )
    # A directory whose parent moved to the matching place is already covered.
    by_src = {m.src: m.dst for m in chosen}
    kept: list[InferredMove] = []
    for move in chosen:
        if _relocate(move.src, by_src, exclude=move.src) == move.dst:
            continue
        kept.append(move)
    # Nor can a directory become one that a parent's move already brings there.
    by_src = {m.src: m.dst for m in kept}
    implied = {_relocate(d, by_src) for d in removed_dirs if d not in by_src}
    return [m for m in kept if m.dst not in implied]


def _relocate(path: str, dir_moves: dict[str, str], exclude: str | None = None) -> str:
    """Where ``path`` ends up when the deepest directory move above it applies."""
    probe = parent_of(path) if exclude == path else path
    while probe:
        target = dir_moves.get(probe)
        if target is not None and probe != exclude:
            return target + path[len(probe) :]
        probe = parent_of(probe)
    return path


def infer_moves(
    removed: Iterable[Node], added: Iterable[Node], kept: Collection[str] = ()
) -> Inference:
    """Infer file and directory moves from one change batch.

    ``removed`` are nodes that left their path, ``added`` nodes that appeared;
    ``kept`` are paths present both before and after (a directory that still
    exists is never moved away).
    """
    old = sorted(removed, key=lambda n: n.path)
    new = sorted(added, key=lambda n: n.path)
    kept_set = set(kept)
    file_moves = sorted(_pair_by_content(old, new), key=lambda m: m.src)
    removed_dirs = {n.path for n in old if n.kind is Kind.DIR and n.path not in kept_set}
    added_dirs = {n.path for n in new if n.kind is Kind.DIR}
    dir_moves = _directory_moves(removed_dirs, added_dirs, file_moves)
    by_src = {m.src: m.dst for m in dir_moves}
    residual = [m for m in file_moves if _relocate(m.src, by_src) != m.dst]
    moves = sorted([*dir_moves, *residual], key=lambda m: (-m.src.count("/"), m.src))
    file_dst = {m.src: m.dst for m in residual}
    new_by_path = {n.path: n for n in new}
    drops: list[str] = []
    arrived: set[str] = set()
    for node in old:
        dest = file_dst.get(node.path) or _relocate(node.path, by_src)
        landing = new_by_path.get(dest) if dest != node.path else None
        if landing is None or landing.kind is not node.kind:
            drops.append(node.path)
        elif node.kind is Kind.DIR or landing.content_hash == node.content_hash:
            arrived.add(dest)
    sets = tuple(n.path for n in new if n.path not in arrived)
    return Inference(moves=tuple(moves), drops=tuple(drops), sets=sets)
