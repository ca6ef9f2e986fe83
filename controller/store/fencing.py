"""The fence: the store remembers the highest lease token each blog's writes carried.

Checking and raising it is one conditional ``UPDATE`` of the blog's row, so on
PostgreSQL the row lock serialises it with the rest of the transaction, and on
SQLite it takes the database's write lock first.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from controller.store.models import BLOGS


def advance(conn: Connection, blog_id: str, token: int, *, strictly: bool = False) -> bool:
    """Record ``token`` unless a newer one was seen; False means a newer holder exists."""
    newest = BLOGS.c.fence_token
    allowed = newest < token if strictly else newest <= token
    result = conn.execute(
        update(BLOGS).where(BLOGS.c.id == blog_id, allowed).values(fence_token=token)
    )
    return result.rowcount == 1
