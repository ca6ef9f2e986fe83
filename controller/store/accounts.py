"""Connected Dropbox accounts: tokens, and which blogs follow which account."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from controller.errors import StoreError
from controller.store.models import BLOGS, DROPBOX_ACCOUNTS
from controller.store.sql import now_utc, upsert


@dataclass(frozen=True)
class DropboxAccountRecord:
    """An account and its tokens; ``repr`` never shows a token."""

    account_id: str
    email: str | None = None
    display_name: str | None = None
    app_key: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, object]:
        return {
            "account_id": self.account_id,
            "email": self.email,
            "display_name": self.display_name,
            "app_key": self.app_key,
            "token": "refresh" if self.refresh_token else "access" if self.access_token else None,
        }


class DropboxAccounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, record: DropboxAccountRecord) -> None:
        """Insert or replace the account's tokens (a reconnect replaces them)."""
        with self.engine.begin() as conn:
            upsert(
                conn,
                DROPBOX_ACCOUNTS,
                [
                    {
                        "account_id": record.account_id,
                        "email": record.email,
                        "display_name": record.display_name,
                        "app_key": record.app_key,
                        "refresh_token": record.refresh_token,
                        "access_token": record.access_token,
                        "created_at": now_utc(),
                    }
                ],
                ["account_id"],
            )

    def get(self, account_id: str) -> DropboxAccountRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(DROPBOX_ACCOUNTS).where(DROPBOX_ACCOUNTS.c.account_id == account_id)
            ).first()
        if row is None:
            raise StoreError(
                f"Dropbox account {account_id} is not connected:"
                " run `controller dropbox authorize` or `controller blog add --refresh-token`"
            )
        return _record(row)

    def all(self) -> list[DropboxAccountRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DROPBOX_ACCOUNTS).order_by(DROPBOX_ACCOUNTS.c.account_id))
            return [_record(row) for row in rows]

    def blogs_by_account(self) -> dict[str, list[str]]:
        """Blog ids per connected account (for webhooks and long-polls)."""
        found: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(BLOGS.c.id, BLOGS.c.source_config)
                .where(BLOGS.c.source_kind == "dropbox")
                .order_by(BLOGS.c.id)
            )
            for blog_id, config in rows:
                account = json.loads(config).get("account_id")
                if account:
                    found.setdefault(account, []).append(blog_id)
        return found


def _record(row: object) -> DropboxAccountRecord:
    return DropboxAccountRecord(
        account_id=row.account_id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        display_name=row.display_name,  # type: ignore[attr-defined]
        app_key=row.app_key,  # type: ignore[attr-defined]
        refresh_token=row.refresh_token,  # type: ignore[attr-defined]
        access_token=row.access_token,  # type: ignore[attr-defined]
    )
