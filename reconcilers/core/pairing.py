"""Pairing removed files with added files: by stable id, by content, by metadata.

Each rule only pairs what is unambiguous; what it cannot decide stays a drop
and a set for the next rule (or for good). All functions are pure and
independent of input order: they sort before they decide.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable

from reconcilers.core.moves import InferredMove, Reason
from reconcilers.core.tree import DIR, FILE, Node, is_within, name_of, parent_of

#: Groups of identical content larger than this (pairs) are matched by unique
#: name only: a full cost matrix would be quadratic in adversarial input.
MAX_COST_PAIRS = 4096
#: Metadata-only matches tolerate this much clock difference (FAT, SMB, zip).
MTIME_SLACK_NS = 2_000_000_000


def by_id(removed: Iterable[Node], added: Iterable[Node]) -> list[InferredMove]:
    """Same stable id on both sides (and on one node each) is the same file or folder."""
    olds: dict[str, list[Node]] = defaultdict(list)
    news: dict[str, list[Node]] = defaultdict(list)
    for node in removed:
        if node.id:
            olds[node.id].append(node)
    for node in added:
        if node.id:
            news[node.id].append(node)
    moves = []
    for key in sorted(olds.keys() & news.keys()):
        (old, *more_old), (new, *more_new) = olds[key], news[key]
        if more_old or more_new or old.kind is not new.kind or old.path == new.path:
            continue
        if new.kind is DIR and is_within(new.path, old.path):
            continue
        edited = old.kind is FILE and old.content_hash != new.content_hash
        moves.append(InferredMove(old.path, new.path, old.kind, Reason.ID, edited))
    return moves


def _distance(a: str, b: str) -> int:
    pa, pb = a.split("/"), b.split("/")
    common = 0
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            break
        common += 1
    return len(pa) + len(pb) - 2 * common


def _cost(old: Node, new: Node) -> tuple[int, int, int]:
    return (
        name_of(old.path) != name_of(new.path),
        parent_of(old.path) != parent_of(new.path),
        _distance(old.path, new.path),
    )


def _unique_best(costs: dict[int, tuple[int, int, int]]) -> int | None:
    if not costs:
        return None
    ranked = sorted(costs.items(), key=lambda item: item[1])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def _match_group(olds: list[Node], news: list[Node]) -> list[tuple[Node, Node]]:
    """Pair within one group of identical content, only where the choice is clear."""
    if len(olds) * len(news) > MAX_COST_PAIRS:
        return _match_unique(olds, news, key=lambda n: name_of(n.path))
    cost = {(i, j): _cost(o, n) for i, o in enumerate(olds) for j, n in enumerate(news)}
    free_old, free_new = set(range(len(olds))), set(range(len(news)))
    pairs: list[tuple[Node, Node]] = []
    changed = True
    while changed:
        changed = False
        for i in sorted(free_old):
            j = _unique_best({j: cost[(i, j)] for j in free_new})
            if j is None:
                continue
            if _unique_best({k: cost[(k, j)] for k in free_old}) != i:
                continue
            pairs.append((olds[i], news[j]))
            free_old.discard(i)
            free_new.discard(j)
            changed = True
    return pairs


def _match_unique(
    olds: list[Node], news: list[Node], key: Callable[[Node], str]
) -> list[tuple[Node, Node]]:
    left: dict[str, list[Node]] = defaultdict(list)
    right: dict[str, list[Node]] = defaultdict(list)
    for node in olds:
        left[key(node)].append(node)
    for node in news:
        right[key(node)].append(node)
    return [
        (left[k][0], right[k][0])
        for k in sorted(left.keys() & right.keys())
        if len(left[k]) == 1 and len(right[k]) == 1
    ]


def by_content(removed: Iterable[Node], added: Iterable[Node]) -> list[InferredMove]:
    """Identical (hash, size), never empty files: identical boilerplate proves nothing."""
    olds: defaultdict[tuple[str, int], list[Node]] = defaultdict(list)
    for node in removed:
        if node.kind is FILE and node.size > 0 and node.content_hash:
            olds[node.content_hash, node.size].append(node)
    news: defaultdict[tuple[str, int], list[Node]] = defaultdict(list)
    for node in added:
        if node.kind is FILE and node.size > 0 and node.content_hash:
            news[node.content_hash, node.size].append(node)
    moves = []
    reason = Reason.HASH
    for key, group in news.items():
        candidates = olds.get(key)
        if candidates is None:
            continue
        if len(candidates) == 1 and len(group) == 1:
            moves.append(InferredMove(candidates[0].path, group[0].path, FILE, reason))
            continue
        for old, new in _match_group(candidates, group):
            moves.append(InferredMove(old.path, new.path, FILE, reason))
    return moves


def by_metadata(removed: Iterable[Node], added: Iterable[Node]) -> list[InferredMove]:
    """No hash, no id: only a unique (name, size, mtime within 2 s) match is a move."""
    olds: dict[tuple[str, int], list[Node]] = defaultdict(list)
    news: dict[tuple[str, int], list[Node]] = defaultdict(list)
    for node in removed:
        if node.kind is FILE and node.size > 0 and not node.id and not node.content_hash:
            olds[(name_of(node.path), node.size)].append(node)
    for node in added:
        if node.kind is FILE and node.size > 0 and not node.id and not node.content_hash:
            news[(name_of(node.path), node.size)].append(node)
    moves = []
    for key in sorted(olds.keys() & news.keys()):
        left = sorted(olds[key], key=lambda n: (n.mtime_ns, n.path))
        right = sorted(news[key], key=lambda n: (n.mtime_ns, n.path))
        left_times = [n.mtime_ns for n in left]
        right_times = [n.mtime_ns for n in right]
        for old in left:
            lo = bisect.bisect_left(right_times, old.mtime_ns - MTIME_SLACK_NS)
            hi = bisect.bisect_right(right_times, old.mtime_ns + MTIME_SLACK_NS)
            if hi - lo != 1:
                continue
            new = right[lo]
            back_lo = bisect.bisect_left(left_times, new.mtime_ns - MTIME_SLACK_NS)
            back_hi = bisect.bisect_right(left_times, new.mtime_ns + MTIME_SLACK_NS)
            if back_hi - back_lo == 1:
                moves.append(InferredMove(old.path, new.path, FILE, Reason.METADATA))
    return moves
