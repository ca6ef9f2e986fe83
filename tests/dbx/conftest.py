"""Fixtures for Dropbox tests: the fake with an account, and a connected blog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbx_blog import APP_KEY, APP_SECRET, ROOT, DropboxBlog, dropbox_settings

from controller.dropbox.connect import connect_blog
from controller.store import Store


@pytest.fixture
def connected(dropbox_fake: Any, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """The fake with an app, an account holding the blog folder, and a refresh token."""
    dropbox_fake.add_app(APP_KEY, APP_SECRET)
    account = dropbox_fake.add_account(email="ann@example.com", display_name="Ann")
    dropbox_fake.mkdir(account, ROOT)
    yield dropbox_fake, account, dropbox_fake.refresh_token(account, APP_KEY)


@pytest.fixture
def dbx(connected: tuple[Any, str, str], tmp_path: Path, store: Store) -> Iterator[DropboxBlog]:
    """A connected blog on each store backend (SQLite, PostgreSQL)."""
    fake, account, refresh = connected
    settings = dropbox_settings(tmp_path, fake, database_url=store.url)
    folder = tmp_path / "blog"
    connect_blog(
        settings,
        store,
        blog_id="b",
        path=ROOT,
        folder=str(folder),
        refresh_token=refresh,
        access_token=None,
        app_key=None,
        app_secret=None,
    )
    yield DropboxBlog(fake, store, settings, account, folder)
