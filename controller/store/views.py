"""Read models for the dashboard and metrics, and its one kind of request: retries.

Reads only, plus :func:`request_retry`, which like a trigger needs no lease:
it records a wish that the next pass, holding the lease, carries out
(:meth:`Store.take_retry_requests`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text

from controller.errors import StoreError
from controller.store.models import ENTRIES, REMOTE, RETRY_REQUESTS, SYNCED
from controller.store.sql import now_utc, upsert, utc


@dataclass(frozen=True)
class FileView:
    path: str
    kind: str
    state: str
    error: str | None
    display: str | None
    size: int


@dataclass(frozen=True)
class EntryView:
    id: str
    title: str
    date: datetime | None
    draft: bool
    tags: tuple[str, ...]
    html: str


class Views:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        """Raise :class:`StoreError` when the database does not answer."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            raise StoreError(f"the store does not answer: {type(exc).__name__}") from None

    def state_counts(self) -> dict[str, Counter[str]]:
        """Files by state, per blog (directories are not counted)."""
        s = SYNCED.c
        counts: dict[str, Counter[str]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.blog_id, s.state, func.count())
                .where(s.kind == "file")
                .group_by(s.blog_id, s.state)
            )
            for blog_id, state, n in rows:
                counts.setdefault(blog_id, Counter())[state] = n
        return counts

    def files(self, blog_id: str) -> list[FileView]:
        return self._files(SYNCED.c.blog_id == blog_id)

    def file(self, blog_id: str, path: str) -> FileView | None:
        found = self._files(SYNCED.c.blog_id == blog_id, SYNCED.c.path == path)
        return found[0] if found else None

    def _files(self, *where: Any) -> list[FileView]:
        """Synced rows with the source's display name, in path order."""
        s, r = SYNCED.c, REMOTE.c
        query = (
            select(s.path, s.kind, s.state, s.error, r.display, s.size)
            .select_from(SYNCED.outerjoin(REMOTE, (r.blog_id == s.blog_id) & (r.path == s.path)))
            .where(*where)
            .order_by(s.path)
        )
        with self.engine.connect() as conn:
            return [FileView(*row) for row in conn.execute(query)]

    def entry(self, blog_id: str, path: str) -> EntryView | None:
        e = ENTRIES.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(e.id, e.title, e.date, e.draft, e.tags, e.html).where(
                    e.blog_id == blog_id, e.path == path, e.deleted.is_(False)
                )
            ).first()
        if row is None:
            return None
        return EntryView(
            row.id, row.title, utc(row.date), bool(row.draft), tuple(json.loads(row.tags)), row.html
        )

    def request_retry(self, blog_id: str, path: str) -> None:
        with self.engine.begin() as conn:
            upsert(
                conn,
                RETRY_REQUESTS,
                [{"blog_id": blog_id, "path": path, "requested_at": now_utc()}],
                ["blog_id", "path"],
            )
