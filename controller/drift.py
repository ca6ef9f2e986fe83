"""Full validation: find what changed in a blog folder behind the controller's back.

The synced tree is only trusted as far as the disk agrees with it. Rows whose
file is gone or whose stat changed are forgotten; files and directories found
on disk that the store does not know are adopted (hashed, state ``pending``);
a post that vanished and reappeared elsewhere with the same bytes keeps its entry.
The planner then repairs everything with its ordinary actions: unwanted files
are dropped, wrong content is set again, right content is only rebuilt.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from controller.store import Store
from reconcilers.build import is_post
from reconcilers.core import pairing
from reconcilers.core.machine import State
from reconcilers.core.planner import SyncedNode as SyncedView
from reconcilers.core.tree import Kind, Node, normalise_path
from reconcilers.errors import InvalidPath
from reconcilers.executor import Executor
from reconcilers.hashing import hash_file


def repair_drift(store: Store, blog_id: str, executor: Executor) -> int:
    """Reconcile the synced tree with the disk; returns how many paths drifted."""
    found = executor.scan()
    synced = store.load_synced(blog_id)
    stats = store.local_stats(blog_id)
    forget: list[str] = []
    adopt: list[dict[str, Any]] = []
    for path, row in synced.items():
        if not row.on_disk:
            continue
        seen = found.get(path)
        if seen is None or seen[0] is not row.node.kind:
            forget.append(path)
        elif row.node.kind is Kind.FILE:
            local = seen[1]
            if stats.get(path) != (local.inode, local.size, local.mtime_ns):
                forget.append(path)
    known = {p for p, row in synced.items() if row.on_disk and p not in forget}
    for raw, (kind, local) in sorted(found.items()):
        if raw in known:
            continue
        try:
            valid = normalise_path(raw) == raw
        except InvalidPath:
            valid = False
        if not valid:
            _remove(executor.root / raw)
            continue
        adopted: dict[str, Any] = {
            "path": raw,
            "kind": kind.value,
            "content_hash": None,
            "state": State.SYNCED.value,
            "size": 0,
            "mtime_ns": 0,
            "local_inode": None,
            "local_size": None,
            "local_mtime_ns": None,
        }
        if kind is Kind.FILE:
            try:
                digest, size = hash_file(str(executor.root / raw))
            except OSError:
                continue
            adopted.update(
                content_hash=digest,
                size=size,
                mtime_ns=local.mtime_ns,
                state=State.PENDING.value,
                local_inode=local.inode,
                local_size=local.size,
                local_mtime_ns=local.mtime_ns,
            )
        adopt.append(adopted)
    store.repair_synced(blog_id, forget, adopt, _moved_posts(synced, found, forget, adopt))
    return len(forget) + len(adopt)


def _moved_posts(
    synced: dict[str, SyncedView],
    found: dict[str, Any],
    forget: list[str],
    adopt: list[dict[str, Any]],
) -> list[tuple[str, str]]:
    """Posts that vanished from one path and appeared, same bytes, at another.

    What a crash between a move's ``rename(2)`` and its record leaves: their
    entries follow (same id, same created time) instead of being replaced.
    The pairing is the rename library's, by unique content.
    """
    gone = [synced[p].node for p in forget if p not in found and is_post(p)]
    arrived = [
        Node(a["path"], Kind.FILE, a["size"], content_hash=a["content_hash"])
        for a in adopt
        if a["kind"] == Kind.FILE.value and is_post(a["path"])
    ]
    if not gone or not arrived:
        return []
    return [(m.src, m.dst) for m in pairing.by_content(gone, arrived)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)
