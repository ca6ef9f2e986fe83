"""Small SQL helpers shared by the store modules: bulk upserts, chunking, subtrees."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, func, literal, or_
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")
CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Iterable[str]) -> None:
    """``INSERT … ON CONFLICT DO UPDATE`` for many rows in one executemany."""
    if not rows:
        return
    key_list = list(keys)
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in key_list}
    conn.execute(stmt.on_conflict_do_update(index_elements=key_list, set_=updates), rows)


def in_subtree(column: Any, root: str) -> ColumnElement[bool]:
    """``column`` is ``root`` or lies below it (no LIKE, so no escaping of ``%``/``_``)."""
    prefix = root + "/"
    return or_(column == root, func.substr(column, 1, len(prefix)) == prefix)


def rebased(column: Any, src: str, dst: str) -> ColumnElement[str]:
    """The path ``column`` would have if the subtree at ``src`` were at ``dst``."""
    return literal(dst) + func.substr(column, len(src) + 1)


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every datetime we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)
