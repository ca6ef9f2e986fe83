"""Leases in the store's own database: the embedded default (SQLite) and PostgreSQL.

One row per blog. A grant is one conditional ``UPDATE`` (free or expired ->
mine, token + 1), so two processes racing for a blog cannot both win; the
row is never deleted, so the token only grows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from controller.errors import LeaseBackendError
from controller.leases.base import Grant, Holding
from controller.store.engine import make_engine
from controller.store.models import LEASES
from controller.store.sql import now_utc, utc

L = LEASES.c


class SqlLeases:
    def __init__(self, url: str) -> None:
        # Its own engine (and so its own connections): a renewal must never wait
        # behind the pass's connection.
        self.engine: Engine = make_engine(url)

    @contextmanager
    def _conn(self, what: str, blog_id: str, *, write: bool = True) -> Iterator[Connection]:
        try:
            with self.engine.begin() if write else self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise LeaseBackendError(
                f"cannot {what} the lease in the database: {exc.orig}", blog_id=blog_id
            ) from exc

    def acquire(self, blog_id: str, holder: str, ttl_ns: int, floor: int) -> Grant | None:
        now_ns = time.time_ns()
        acquired = now_utc()
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert
        with self._conn("acquire", blog_id) as conn:
            conn.execute(
                insert(LEASES)
                .values(blog_id=blog_id, holder=None, token=0, expires_at_ns=0)
                .on_conflict_do_nothing(index_elements=["blog_id"])
            )
            token = conn.execute(
                update(LEASES)
                .where(L.blog_id == blog_id, L.holder.is_(None) | (L.expires_at_ns <= now_ns))
                .values(
                    holder=holder,
                    token=case((L.token < floor, floor), else_=L.token) + 1,
                    expires_at_ns=now_ns + ttl_ns,
                    acquired_at=acquired,
                )
                .returning(L.token)
            ).scalar()
        return None if token is None else Grant(blog_id, holder, int(token), acquired)

    def _mine(self, grant: Grant) -> ColumnElement[bool]:
        return and_(L.blog_id == grant.blog_id, L.holder == grant.holder, L.token == grant.token)

    def renew(self, grant: Grant, ttl_ns: int) -> bool:
        with self._conn("renew", grant.blog_id) as conn:
            result = conn.execute(
                update(LEASES)
                .where(self._mine(grant))
                .values(expires_at_ns=time.time_ns() + ttl_ns)
            )
        return result.rowcount == 1

    def release(self, grant: Grant) -> bool:
        with self._conn("release", grant.blog_id) as conn:
            result = conn.execute(
                update(LEASES).where(self._mine(grant)).values(holder=None, expires_at_ns=0)
            )
        return result.rowcount == 1

    def holding(self, blog_id: str) -> Holding | None:
        with self._conn("read", blog_id, write=False) as conn:
            row = conn.execute(select(LEASES).where(L.blog_id == blog_id)).first()
        if row is None or row.holder is None or row.expires_at_ns <= time.time_ns():
            return None
        since = utc(row.acquired_at) or now_utc()
        return Holding(row.holder, row.token, since, row.expires_at_ns)

    def break_lease(self, blog_id: str, holder: str) -> bool:
        with self._conn("break", blog_id) as conn:
            result = conn.execute(
                update(LEASES)
                .where(L.blog_id == blog_id, L.holder == holder)
                .values(expires_at_ns=0)
            )
        return result.rowcount == 1

    def close(self) -> None:
        self.engine.dispose()
