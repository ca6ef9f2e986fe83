"""The remote and synced trees: loading them whole or a region, saving observations in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    select,
    union_all,
    update,
)

from controller.store.models import BLOGS, REMOTE, SYNCED
from controller.store.sql import in_subtree, upsert
from reconcilers.core.machine import State
from reconcilers.core.planner import SyncedNode as SyncedView
from reconcilers.core.tree import Kind, Node
from reconcilers.sources.base import Observation

_KINDS = {k.value: k for k in Kind}
_STATES = {s.value: s for s in State}


@dataclass(frozen=True)
class Region:
    """Some paths, everything under them and every folder above them.

    A watched edit touches a few paths; loading only their region keeps the
    pass's cost to the edit's size. On SQLite (bytewise collation) a subtree
    is the key range ``path/`` up to ``path0`` (``0`` follows ``/``), which the
    primary key serves; a PostgreSQL collation need not order ``/`` before
    ``0``, so there the database compares prefixes (in its own code).
    """

    paths: frozenset[str]
    #: False: the paths alone (point lookups), not what lies under or above them.
    whole: bool = True

    @classmethod
    def around(cls, paths: Iterable[str]) -> Region:
        return cls(frozenset(paths))

    @classmethod
    def exactly(cls, paths: Iterable[str]) -> Region:
        return cls(frozenset(paths), whole=False)

    @property
    def ancestors(self) -> frozenset[str]:
        out: set[str] = set()
        for path in self.paths:
            parts = path.split("/")
            out.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return frozenset(out - self.paths)

    def terms(self, table: Table, dialect: str) -> list[ColumnElement[bool]]:
        """One condition per index lookup: the exact paths, then each subtree.

        Separate terms (run as a UNION ALL) because SQLite uses the primary key
        for ``blog_id`` alone when they are ORed together.
        """
        path = table.c.path
        if not self.whole:
            return [path.in_(sorted(self.paths))]
        if dialect == "sqlite":  # BINARY collation: a subtree is one key range
            below = [and_(path >= f"{p}/", path < f"{p}0") for p in sorted(self.paths)]
        else:
            below = [in_subtree(path, p) for p in sorted(self.paths)]
        return [path.in_(sorted(self.paths | self.ancestors)), *below]


def _rows(
    conn: Connection, query: Select[Any], table: Table, blog_id: str, region: Region | None
) -> Sequence[Any]:
    """``query``'s rows for the blog, all of them or its ``region``'s."""
    mine = table.c.blog_id == blog_id
    if region is None:
        return conn.execute(query.where(mine)).all()
    parts = [query.where(mine, term) for term in region.terms(table, conn.dialect.name)]
    return conn.execute(union_all(*parts)).all()


def load_remote(conn: Connection, blog_id: str, region: Region | None = None) -> dict[str, Node]:
    r = REMOTE.c
    query = select(
        r.path,
        r.kind,
        r.size,
        r.mtime_ns,
        r.content_hash,
        r.rev,
        r.node_id,
        r.ignored,
        r.problem,
        r.display,
    )
    rows = _rows(conn, query, REMOTE, blog_id, region)
    kinds = _KINDS
    return {
        path: Node(
            path, kinds[kind], size, mtime, digest, rev, node_id, bool(ignored), problem, display
        )
        for path, kind, size, mtime, digest, rev, node_id, ignored, problem, display in rows
    }


def save_observation(conn: Connection, blog_id: str, observation: Observation) -> None:
    """Store what the source said and its cursor together (one transaction)."""
    upsert(
        conn,
        REMOTE,
        [
            {
                "blog_id": blog_id,
                "path": n.path,
                "kind": n.kind.value,
                "size": n.size,
                "mtime_ns": n.mtime_ns,
                "content_hash": n.content_hash,
                "rev": n.rev,
                "node_id": n.id,
                "ignored": n.ignored,
                "problem": n.problem,
                "display": n.display,
            }
            for n in observation.upserts
        ],
        ["blog_id", "path"],
    )
    if observation.deletes:
        # One executemany, however many paths: a renamed folder of 10,000 files
        # is 10,000 deletes here, and must not be 20 round trips of IN lists.
        conn.execute(
            delete(REMOTE).where(
                REMOTE.c.blog_id == bindparam("b_blog"), REMOTE.c.path == bindparam("b_path")
            ),
            [{"b_blog": blog_id, "b_path": path} for path in observation.deletes],
        )
    conn.execute(update(BLOGS).where(BLOGS.c.id == blog_id).values(cursor=observation.cursor))


def load_synced(
    conn: Connection, blog_id: str, region: Region | None = None
) -> dict[str, SyncedView]:
    s = SYNCED.c
    query = select(
        s.path,
        s.kind,
        s.size,
        s.mtime_ns,
        s.content_hash,
        s.rev,
        s.node_id,
        s.state,
        s.error,
        s.retry_at_ns,
        s.failed_hash,
    )
    rows = _rows(conn, query, SYNCED, blog_id, region)
    kinds, states = _KINDS, _STATES
    return {
        row[0]: SyncedView(
            Node(row[0], kinds[row[1]], row[2], row[3], row[4], row[5], row[6]),
            states[row[7]],
            row[8],
            row[9],
            row[10],
        )
        for row in rows
    }


def local_stats(
    conn: Connection, blog_id: str
) -> dict[str, tuple[int | None, int | None, int | None]]:
    """Installed files' recorded (inode, size, mtime_ns), for drift detection."""
    s = SYNCED.c
    rows = conn.execute(
        select(s.path, s.local_inode, s.local_size, s.local_mtime_ns).where(
            s.blog_id == blog_id, s.kind == Kind.FILE.value, s.content_hash.is_not(None)
        )
    ).all()
    return {path: (inode, size, mtime) for path, inode, size, mtime in rows}
