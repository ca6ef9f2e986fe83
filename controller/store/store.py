"""The store facade: one object per database, repository methods per concern.

Methods return plain values (``Node``, ``SyncedNode``, records), never ORM
rows, and each write is one transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from controller.errors import BlogExists, LeaseLost, StoreError, UnknownBlog
from controller.settings import Settings
from controller.store import apply, entries, fencing, trees
from controller.store.accounts import DropboxAccounts
from controller.store.engine import ensure_schema, make_engine, upgrade
from controller.store.models import (
    BLOGS,
    ENTRIES,
    HISTORY,
    LEASES,
    REMOTE,
    RETRY_REQUESTS,
    SYNCED,
)
from controller.store.records import BlogRecord, EntryRecord, HistoryRecord
from controller.store.sql import in_subtree, now_utc, upsert, utc
from controller.store.views import Views
from reconcilers.core.machine import State
from reconcilers.core.planner import SyncedNode as SyncedView
from reconcilers.core.tree import Node
from reconcilers.outcomes import Outcome
from reconcilers.sources.base import Observation

SETTLED_FOREVER = 2**62


def _unsettle(conn: Connection, blog_id: str) -> None:
    conn.execute(update(BLOGS).where(BLOGS.c.id == blog_id).values(settled_until_ns=None))


def _blog(row: object) -> BlogRecord:
    return BlogRecord(
        id=row.id,  # type: ignore[attr-defined]
        source_kind=row.source_kind,  # type: ignore[attr-defined]
        source_config=json.loads(row.source_config),  # type: ignore[attr-defined]
        folder=row.folder,  # type: ignore[attr-defined]
        cursor=row.cursor,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        status_message=row.status_message,  # type: ignore[attr-defined]
        dirty=bool(row.dirty),  # type: ignore[attr-defined]
        settled_until_ns=row.settled_until_ns,  # type: ignore[attr-defined]
        created_at=utc(row.created_at),  # type: ignore[attr-defined]
        last_pass_at=utc(row.last_pass_at),  # type: ignore[attr-defined]
        last_pass_seconds=row.last_pass_seconds,  # type: ignore[attr-defined]
        last_pass_result=row.last_pass_result,  # type: ignore[attr-defined]
        generation=row.generation,  # type: ignore[attr-defined]
        pass_generation=row.pass_generation,  # type: ignore[attr-defined]
        failures=row.failures,  # type: ignore[attr-defined]
        next_pass_at_ns=row.next_pass_at_ns,  # type: ignore[attr-defined]
        last_full_at=utc(row.last_full_at),  # type: ignore[attr-defined]
    )


class Store:
    def __init__(self, url: str, *, auto_upgrade: bool | None = None) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        #: Lease tokens held by each thread, by blog: that thread's writes for
        #: these blogs are fenced. Per thread, because two threads of a process
        #: may hold the same blog one after the other, and the one whose lease
        #: ran out must not write with the other's token.
        self._fences = threading.local()
        self.dropbox_accounts = DropboxAccounts(self.engine)
        self.views = Views(self.engine)
        embedded = self.engine.dialect.name == "sqlite"
        try:
            ensure_schema(
                self.engine, auto_upgrade=embedded if auto_upgrade is None else auto_upgrade
            )
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self.engine.url!r}: {exc.orig}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.effective_database_url)

    def upgrade(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc

    # -- fencing -------------------------------------------------------------

    def _fence_map(self) -> dict[str, int]:
        tokens: dict[str, int] | None = getattr(self._fences, "tokens", None)
        if tokens is None:
            tokens = self._fences.tokens = {}
        return tokens

    def fence(self, blog_id: str, token: int) -> None:
        """From now on this thread's writes for ``blog_id`` carry ``token``."""
        self._fence_map()[blog_id] = token

    def unfence(self, blog_id: str, token: int) -> None:
        """Stop fencing with ``token`` (a newer registration is left alone)."""
        tokens = self._fence_map()
        if tokens.get(blog_id) == token:
            del tokens[blog_id]

    def fence_token(self, blog_id: str) -> int:
        """The highest lease token any write for ``blog_id`` has carried."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(BLOGS.c.fence_token).where(BLOGS.c.id == blog_id)).scalar() or 0
            )

    def raise_fence(self, blog_id: str, token: int) -> bool:
        """A new holder announces its token at once, before a stale holder writes again."""
        with self.transaction() as conn:
            return fencing.advance(conn, blog_id, token, strictly=True)

    @contextmanager
    def _write(self, blog_id: str) -> Iterator[Connection]:
        """A transaction for one blog's data, fenced when this process holds its lease."""
        token = self._fence_map().get(blog_id)
        with self.transaction() as conn:
            if token is not None and not fencing.advance(conn, blog_id, token):
                raise LeaseLost(
                    f"a newer lease holder than token {token} exists: the write was rolled back",
                    blog_id=blog_id,
                )
            yield conn

    # -- blogs -------------------------------------------------------------

    def add_blog(self, record: BlogRecord) -> BlogRecord:
        try:
            with self.transaction() as conn:
                conn.execute(
                    BLOGS.insert().values(
                        id=record.id,
                        source_kind=record.source_kind,
                        source_config=json.dumps(record.source_config, sort_keys=True),
                        folder=record.folder,
                        status="new",
                        dirty=False,
                        created_at=now_utc(),
                    )
                )
        except IntegrityError:
            raise BlogExists("a blog with this id already exists", blog_id=record.id) from None
        return self.get_blog(record.id)

    def get_blog(self, blog_id: str) -> BlogRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(BLOGS).where(BLOGS.c.id == blog_id)).first()
        if row is None:
            raise UnknownBlog("no such blog (see `controller blog list`)", blog_id=blog_id)
        return _blog(row)

    def list_blogs(self) -> list[BlogRecord]:
        with self.engine.connect() as conn:
            return [_blog(row) for row in conn.execute(select(BLOGS).order_by(BLOGS.c.id))]

    def remove_blog(self, blog_id: str) -> None:
        self.get_blog(blog_id)
        with self.transaction() as conn:
            for table in (SYNCED, HISTORY, REMOTE, ENTRIES, LEASES, RETRY_REQUESTS):
                conn.execute(delete(table).where(table.c.blog_id == blog_id))
            conn.execute(delete(BLOGS).where(BLOGS.c.id == blog_id))

    def set_status(self, blog_id: str, status: str, message: str | None = None) -> None:
        with self._write(blog_id) as conn:
            conn.execute(
                update(BLOGS)
                .where(BLOGS.c.id == blog_id)
                .values(status=status, status_message=message)
            )

    def set_dirty(self, blog_id: str, dirty: bool) -> None:
        with self._write(blog_id) as conn:
            conn.execute(
                update(BLOGS)
                .where(BLOGS.c.id == blog_id)
                .values(dirty=dirty, settled_until_ns=None)
            )

    def mark_settled(self, blog_id: str) -> None:
        """The trees agree: record until when an empty observation needs no plan."""
        s = SYNCED.c
        with self._write(blog_id) as conn:
            next_retry = conn.execute(
                select(func.min(s.retry_at_ns)).where(
                    s.blog_id == blog_id, s.state == State.FAILED.value
                )
            ).scalar()
            conn.execute(
                update(BLOGS)
                .where(BLOGS.c.id == blog_id)
                .values(settled_until_ns=next_retry if next_retry is not None else SETTLED_FOREVER)
            )

    def record_pass(
        self,
        blog_id: str,
        *,
        at: datetime,
        seconds: float,
        result: str,
        message: str | None,
        history_limit: int,
        generation: int | None = None,
        next_pass_at_ns: int | None = None,
        failures: int = 0,
        full: bool = False,
    ) -> None:
        """The end of a pass: its result, the trigger generation it started from, when next."""
        values: dict[str, Any] = {
            "last_pass_at": at,
            "last_pass_seconds": seconds,
            "last_pass_result": result,
            "status": "ok" if result == "ok" else "error",
            "status_message": message,
            "failures": failures,
            "next_pass_at_ns": next_pass_at_ns,
        }
        if generation is not None:
            values["pass_generation"] = generation
        if full:
            values["last_full_at"] = at
        with self._write(blog_id) as conn:
            conn.execute(update(BLOGS).where(BLOGS.c.id == blog_id).values(**values))
            apply.trim_history(conn, blog_id, history_limit)

    def log(self, blog_id: str, message: str) -> None:
        """A line of the blog's history written by a ``sync()`` caller."""
        with self._write(blog_id) as conn:
            conn.execute(
                HISTORY.insert().values(
                    blog_id=blog_id, at=now_utc(), action="log", path="", result=message
                )
            )

    # -- triggers --------------------------------------------------------------

    def trigger(self, blog_id: str) -> int:
        """Bump the blog's generation: it stays due until a pass starts from it.

        Never fenced: anyone may ask for a pass, lease or not.
        """
        with self.transaction() as conn:
            generation = conn.execute(
                update(BLOGS)
                .where(BLOGS.c.id == blog_id)
                .values(generation=BLOGS.c.generation + 1)
                .returning(BLOGS.c.generation)
            ).scalar()
        if generation is None:
            raise UnknownBlog("no such blog (see `controller blog list`)", blog_id=blog_id)
        return int(generation)

    def take_retry_requests(self, blog_id: str) -> list[str]:
        """Make the requested failed files due now (fenced: the pass holds the lease)."""
        s, q = SYNCED.c, RETRY_REQUESTS.c
        with self.engine.connect() as conn:  # most passes find none: no write then
            if conn.execute(select(q.path).where(q.blog_id == blog_id).limit(1)).first() is None:
                return []
        with self._write(blog_id) as conn:
            paths = list(conn.execute(select(q.path).where(q.blog_id == blog_id)).scalars())
            for path in paths:
                conn.execute(
                    update(SYNCED)
                    .where(s.blog_id == blog_id, s.path == path, s.state == State.FAILED.value)
                    .values(retry_at_ns=0, attempts=0, failed_hash=None)
                )
            conn.execute(delete(RETRY_REQUESTS).where(q.blog_id == blog_id, q.path.in_(paths)))
            _unsettle(conn, blog_id)
        return paths

    def due_blogs(self, now_ns: int) -> list[BlogRecord]:
        """Blogs with a trigger newer than their last pass, or whose next pass is due."""
        b = BLOGS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(BLOGS)
                .where(
                    (b.generation > b.pass_generation)
                    | b.next_pass_at_ns.is_(None)
                    | (b.next_pass_at_ns <= now_ns)
                )
                .order_by(b.next_pass_at_ns.is_not(None), b.next_pass_at_ns, b.id)
            )
            return [_blog(row) for row in rows]

    # -- trees ---------------------------------------------------------------

    def load_remote(self, blog_id: str, region: trees.Region | None = None) -> dict[str, Node]:
        with self.engine.connect() as conn:
            return trees.load_remote(conn, blog_id, region)

    def save_observation(self, blog_id: str, observation: Observation) -> None:
        with self._write(blog_id) as conn:
            trees.save_observation(conn, blog_id, observation)
            if not observation.empty:
                _unsettle(conn, blog_id)

    def load_synced(
        self, blog_id: str, region: trees.Region | None = None
    ) -> dict[str, SyncedView]:
        with self.engine.connect() as conn:
            return trees.load_synced(conn, blog_id, region)

    def state_of(self, blog_id: str, path: str) -> State | None:
        """One path's state in the synced tree (None when it has no row)."""
        s = SYNCED.c
        with self.engine.connect() as conn:
            value = conn.execute(
                select(s.state).where(s.blog_id == blog_id, s.path == path)
            ).scalar()
        return None if value is None else State(value)

    def local_stats(self, blog_id: str) -> dict[str, tuple[int | None, int | None, int | None]]:
        with self.engine.connect() as conn:
            return trees.local_stats(conn, blog_id)

    def record(self, blog_id: str, outcomes: Sequence[Outcome], now_ns: int) -> apply.Applied:
        with self._write(blog_id) as conn:
            _unsettle(conn, blog_id)
            return apply.record(conn, blog_id, outcomes, now_utc(), now_ns)

    def repair_synced(
        self,
        blog_id: str,
        forget: Sequence[str],
        adopt: Sequence[dict[str, Any]],
        moved: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Drift repair: forget rows whose disk content is unknown, adopt what disk has.

        ``moved`` entries follow their post from one path to another first, so
        forgetting the old path does not tombstone them.
        """
        s = SYNCED.c
        with self._write(blog_id) as conn:
            _unsettle(conn, blog_id)
            now = now_utc()
            for src, dst in moved:
                entries.move(conn, blog_id, src, dst, now)
            for root in forget:
                conn.execute(delete(SYNCED).where(s.blog_id == blog_id, in_subtree(s.path, root)))
                # Its entry goes with it; a later set or build of the same path
                # revives the same id.
                entries.soft_delete(conn, blog_id, root, now)
            rows = [{"blog_id": blog_id, "attempts": 0, "retry_at_ns": 0, **row} for row in adopt]
            upsert(conn, SYNCED, rows, ["blog_id", "path"])

    # -- entries and history ---------------------------------------------------

    def entries(self, blog_id: str, *, include_deleted: bool = True) -> list[EntryRecord]:
        with self.engine.connect() as conn:
            return entries.list_entries(conn, blog_id, include_deleted=include_deleted)

    def history(self, blog_id: str, limit: int = 100) -> list[HistoryRecord]:
        h = HISTORY.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(h.at, h.action, h.path, h.result)
                .where(h.blog_id == blog_id)
                .order_by(h.id.desc())
                .limit(limit)
            )
            return [HistoryRecord(utc(r.at), r.action, r.path, r.result) for r in rows]  # type: ignore[arg-type]
