"""Entries: idempotent writes keyed by path, moves that keep ids, soft deletes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from controller.store.models import ENTRIES
from controller.store.records import EntryRecord, dumps
from controller.store.sql import chunks, in_subtree, rebased, utc
from reconcilers.build import EntryDraft


@dataclass(frozen=True, slots=True)
class EntryWrite:
    draft: EntryDraft
    updated: datetime


def set_entries(
    conn: Connection, blog_id: str, writes: Sequence[EntryWrite], now: datetime
) -> None:
    """Create or update the live entry at each path.

    The same path always maps to one id: a live entry is updated in place, a
    soft-deleted one is revived with its id and created time, and only a path
    never seen before gets a new id. ``updated`` is when the entry was built;
    a write older than the stored one (a stale writer) never overwrites it.
    """
    if not writes:
        return
    e = ENTRIES.c
    paths = [w.draft.path for w in writes]
    live: dict[str, tuple[str, datetime]] = {}
    tombs: dict[str, str] = {}
    for part in chunks(paths):
        for row in conn.execute(
            select(e.id, e.path, e.updated, e.deleted, e.deleted_at)
            .where(e.blog_id == blog_id, e.path.in_(part))
            .order_by(e.deleted_at)
        ):
            if not row.deleted:
                live[row.path] = (row.id, utc(row.updated) or now)
            else:
                tombs[row.path] = row.id
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[str, datetime | None, dict[str, Any]]] = []
    for write in writes:
        draft = write.draft
        fields = {
            "title": draft.title,
            "html": draft.html,
            "tags": dumps(list(draft.tags)),
            "draft": draft.draft,
            "metadata_json": dumps(dict(draft.metadata)),
            "updated": write.updated,
            "deleted": False,
            "deleted_at": None,
        }
        if draft.path in live:
            entry_id, updated = live[draft.path]
            if updated > write.updated:
                continue
            updates.append((entry_id, draft.date, fields))
        elif draft.path in tombs:
            updates.append((tombs[draft.path], draft.date, fields))
        else:
            inserts.append(
                {
                    "id": uuid.uuid4().hex,
                    "blog_id": blog_id,
                    "path": draft.path,
                    "date": draft.date or now,
                    "created": now,
                    **fields,
                }
            )
    if inserts:
        conn.execute(ENTRIES.insert(), inserts)
    for entry_id, date, fields in updates:
        conn.execute(
            update(ENTRIES)
            .where(e.id == entry_id)
            .values(date=date if date is not None else e.created, **fields)
        )


def soft_delete(conn: Connection, blog_id: str, root: str, now: datetime) -> None:
    """Mark live entries at ``root`` (or below it) deleted."""
    e = ENTRIES.c
    conn.execute(
        update(ENTRIES)
        .where(e.blog_id == blog_id, e.deleted.is_(False), in_subtree(e.path, root))
        .values(deleted=True, deleted_at=now)
    )


def move(conn: Connection, blog_id: str, src: str, dst: str, now: datetime) -> None:
    """Entries under ``src`` follow the move, keeping their ids and created times."""
    e = ENTRIES.c
    soft_delete(conn, blog_id, dst, now)
    conn.execute(
        update(ENTRIES)
        .where(e.blog_id == blog_id, e.deleted.is_(False), in_subtree(e.path, src))
        .values(path=rebased(e.path, src, dst))
    )


def list_entries(
    conn: Connection, blog_id: str, *, include_deleted: bool = True
) -> list[EntryRecord]:
    e = ENTRIES.c
    query = select(ENTRIES).where(e.blog_id == blog_id)
    if not include_deleted:
        query = query.where(e.deleted.is_(False))
    rows = conn.execute(query.order_by(e.path, e.deleted, e.created))
    return [
        EntryRecord(
            id=row.id,
            path=row.path,
            title=row.title,
            html=row.html,
            date=utc(row.date) or utc(row.created),  # type: ignore[arg-type]
            created=utc(row.created),  # type: ignore[arg-type]
            updated=utc(row.updated),  # type: ignore[arg-type]
            tags=tuple(json.loads(row.tags)),
            draft=bool(row.draft),
            deleted=bool(row.deleted),
            deleted_at=utc(row.deleted_at),
            metadata=json.loads(row.metadata_json),
        )
        for row in rows
    ]
