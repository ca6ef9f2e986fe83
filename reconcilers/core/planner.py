"""The planner: ``plan(remote, synced) -> Plan``, a pure function.

It compares the desired tree (what the source says) with the synced tree (what
is installed) and returns the actions that make the folder equal to the
source: drops first, then moves, then directory creation, then sets.

Ordering is not left to luck: :mod:`reconcilers.core.schedule` replays the plan
on a model of the folder and only emits an action once its preconditions hold
there, breaking swaps and cycles through temporary names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconcilers.core.machine import State
from reconcilers.core.plan import (
    Build,
    Drop,
    Ignore,
    Plan,
    Reject,
    Set,
)
from reconcilers.core.renames import infer_moves
from reconcilers.core.schedule import Scheduler
from reconcilers.core.tree import DIR, FILE, Node, Tree, parent_of
from reconcilers.errors import UnsafePlan

#: States in which a file's installed bytes are final and its entry is built.
SETTLED = frozenset({State.SYNCED, State.REJECTED})


@dataclass(frozen=True, slots=True)
class SyncedNode:
    """A row of the synced tree.

    ``node.content_hash`` is the hash of what is *installed* at the path; it is
    ``None`` when nothing is installed there yet (a pending or failed new file,
    an ignored or rejected path).
    """

    node: Node
    state: State
    error: str | None = None
    retry_at_ns: int = 0
    failed_hash: str | None = None

    def retry_pending(self, node: Node, now_ns: int) -> bool:
        """A failed fetch of exactly this content waits for its backoff to expire."""
        return (
            self.state is State.FAILED
            and self.failed_hash == node.content_hash
            and self.retry_at_ns > now_ns
        )

    @property
    def on_disk(self) -> bool:
        if self.state is State.IGNORED:
            return False
        if self.node.kind is DIR:
            # Directories are never built: a rejected one was refused, not installed.
            return self.state is not State.REJECTED
        return self.node.content_hash is not None


@dataclass(frozen=True, slots=True)
class Desired:
    """The remote tree split into what to install, what to ignore, what to refuse."""

    wanted: dict[str, Node]
    ignored: dict[str, Node]
    invalid: dict[str, tuple[Node, str]]


def classify(remote: Tree) -> Desired:
    """Split the remote tree; a node needs a directory parent the source also lists."""
    wanted: dict[str, Node] = {}
    ignored: dict[str, Node] = {}
    invalid: dict[str, tuple[Node, str]] = {}
    for path in sorted(remote):
        node = remote[path]
        parent = parent_of(path)
        if node.problem is not None:
            invalid[path] = (node, node.problem)
        elif parent in ignored or node.ignored:
            ignored[path] = node
        elif parent in invalid:
            invalid[path] = (node, f"its parent {parent!r} cannot be installed")
        elif parent and parent not in wanted:
            invalid[path] = (node, f"its parent directory {parent!r} is not in the source")
        elif parent and wanted[parent].kind is FILE:
            invalid[path] = (node, f"a file ({parent!r}) is where a directory must be")
        else:
            wanted[path] = node
    return Desired(wanted, ignored, invalid)


def _differs(old: Node, new: Node) -> bool:
    if old.kind is not new.kind:
        return True
    return old.kind is FILE and old.content_hash != new.content_hash


def _content_work(
    node: Node, landed: Node | None, row: SyncedNode | None, now_ns: int
) -> Set | Build | None:
    """What a wanted file needs once moves are done (``landed``: what sits there then)."""
    if landed is not None and landed.content_hash == node.content_hash:
        if row is not None and row.state in SETTLED:
            return None
        if row is not None and row.retry_pending(node, now_ns):
            return None
        return Build(node)
    if row is not None and row.retry_pending(node, now_ns):
        return None
    return Set(node)


def plan(remote: Tree, synced: Mapping[str, SyncedNode], *, now_ns: int = 0) -> Plan:
    """The ordered actions that make the folder described by ``synced`` equal ``remote``.

    ``now_ns`` only decides whether a failed file's retry is due; pass the
    current time from the shell.
    """
    desired = classify(remote)
    wanted = desired.wanted
    on_disk = {p: row.node for p, row in synced.items() if row.on_disk}

    removed = [n for p, n in on_disk.items() if p not in wanted or _differs(n, wanted[p])]
    added = [n for p, n in wanted.items() if p not in on_disk or _differs(on_disk[p], n)]
    kept = [p for p, n in on_disk.items() if p in wanted and n.kind is wanted[p].kind]
    inference = infer_moves(removed, added, kept, order=False)

    scheduler = Scheduler(on_disk, wanted, synced)
    landed = scheduler.settle(inference.moves)

    actions: list[Set | Build] = []
    for path, node in sorted(wanted.items()):
        if node.kind is FILE:
            origin = landed.get(path)
            row = synced.get(origin[0] if origin else path)
            work = _content_work(node, origin[1] if origin else None, row, now_ns)
            if work is not None:
                actions.append(work)

    bookkeeping: list[Ignore | Reject | Drop] = []
    for path, node in sorted(desired.ignored.items()):
        row = synced.get(path)
        if row is None or row.state is not State.IGNORED:
            bookkeeping.append(Ignore(node))
    for path, (node, message) in sorted(desired.invalid.items()):
        row = synced.get(path)
        if row is None or row.state is not State.REJECTED or row.error != message:
            bookkeeping.append(Reject(node, message))
    for path, row in sorted(synced.items()):
        if row.on_disk or path in wanted or path in desired.ignored or path in desired.invalid:
            continue
        bookkeeping.append(Drop(path, row.node.kind, on_disk=False))

    return (*scheduler.actions, *actions, *bookkeeping)


def guard(plan_: Plan, synced_files: int, *, remote_empty: bool, max_share: float) -> None:
    """Refuse a plan that would drop most of a blog after a suspicious listing.

    An empty listing usually means a broken source (an unmounted disk, a
    revoked token), not an author who deleted everything.
    """
    drops = sum(1 for a in plan_ if isinstance(a, Drop) and a.on_disk and a.kind is FILE)
    if remote_empty and synced_files and drops > max_share * synced_files:
        raise UnsafePlan(
            f"the source listed nothing; refusing to drop {drops} of {synced_files} files "
            f"(more than {max_share:.0%})"
        )


__all__ = ["SETTLED", "Desired", "SyncedNode", "classify", "guard", "plan"]
