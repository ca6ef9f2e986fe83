"""SQLAlchemy 2 typed models: the store's schema, and the only definition of it.

Alembic migrations are written against these models and a test checks that
the migrated schema and the models agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Blog(Base):
    __tablename__ = "blogs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_config: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="new")
    status_message: Mapped[str | None] = mapped_column(Text)
    dirty: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The last pass ended with nothing to do; until this time (the next due
    #: retry) a pass whose observation is empty needs no planning. Any write to
    #: the blog's trees clears it.
    settled_until_ns: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_pass_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_pass_seconds: Mapped[float | None]
    last_pass_result: Mapped[str | None] = mapped_column(String(32))
    #: Durable triggers: every trigger bumps ``generation``; a pass records the
    #: generation it started from, so a trigger during a pass leaves the blog due.
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    pass_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The highest lease token a write for this blog has carried (fencing).
    fence_token: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Consecutive failed passes, and when the daemon should next run the blog
    #: (periodic resync, a failed file's retry, or backoff after a failed pass).
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_pass_at_ns: Mapped[int | None] = mapped_column(BigInteger)
    last_full_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RemoteNode(Base):
    """The observed remote tree: what the source last said."""

    __tablename__ = "remote_nodes"

    blog_id: Mapped[str] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    rev: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(Text)
    ignored: Mapped[bool] = mapped_column(Boolean, default=False)
    problem: Mapped[str | None] = mapped_column(Text)
    #: The source's own spelling of the path (Dropbox's ``path_display``) when
    #: the key is a normalised form of it; for people, never for matching.
    display: Mapped[str | None] = mapped_column(Text)


class SyncedNode(Base):
    """The synced tree: what is installed in the blog folder, with its state."""

    __tablename__ = "synced_nodes"

    blog_id: Mapped[str] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    rev: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    local_inode: Mapped[int | None] = mapped_column(BigInteger)
    local_size: Mapped[int | None] = mapped_column(BigInteger)
    local_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_hash: Mapped[str | None] = mapped_column(String(64))


class Entry(Base):
    """A built post. ``path`` is unique among live entries; tombstones keep theirs."""

    __tablename__ = "entries"
    __table_args__ = (
        Index(
            "uq_entries_live_path",
            "blog_id",
            "path",
            unique=True,
            sqlite_where=text("NOT deleted"),
            postgresql_where=text("NOT deleted"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    blog_id: Mapped[str] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tags: Mapped[str] = mapped_column(Text, default="[]")
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    """The SQL lease backend's row per blog; ``token`` grows with every grant."""

    __tablename__ = "leases"

    blog_id: Mapped[str] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str | None] = mapped_column(Text)
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DropboxAccount(Base):
    """A connected Dropbox account: its tokens, shared by the account's blogs.

    Tokens live here and nowhere else (not in a blog's ``source_config``, which
    is shown by ``blog list``), so nothing that prints a blog can leak them.
    """

    __tablename__ = "dropbox_accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    app_key: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetryRequest(Base):
    """ "Retry" pressed for a failed file: a request the next pass consumes under its
    lease (the dashboard holds no lease, so it never writes a file's row itself)."""

    __tablename__ = "retry_requests"

    blog_id: Mapped[str] = mapped_column(
        ForeignKey("blogs.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class History(Base):
    """A bounded per-blog log of actions (trimmed after every pass)."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    blog_id: Mapped[str] = mapped_column(ForeignKey("blogs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_history_blog_id_id", "blog_id", "id"),)


def _table(model: type[Base]) -> Table:
    """The Core table behind a model, typed as such (for bulk statements)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


BLOGS = _table(Blog)
REMOTE = _table(RemoteNode)
SYNCED = _table(SyncedNode)
ENTRIES = _table(Entry)
HISTORY = _table(History)
LEASES = _table(Lease)
DROPBOX_ACCOUNTS = _table(DropboxAccount)
RETRY_REQUESTS = _table(RetryRequest)
