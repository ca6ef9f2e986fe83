"""Long-polls per account: which blogs they trigger, and the backoff Dropbox asks for."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbx_blog import APP_KEY, APP_SECRET, dropbox_settings
from support import wait_until

from controller.dropbox.longpoll import LongPolls
from controller.store import BlogRecord, Store
from controller.store.accounts import DropboxAccountRecord


class Fired:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[float, str]] = []

    def __call__(self, blog_id: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), blog_id))

    def blogs(self) -> list[str]:
        with self.lock:
            return [b for _, b in self.events]


@pytest.fixture
def polls(dropbox_fake: Any, tmp_path: Path) -> Iterator[tuple[Any, LongPolls, Fired, list[str]]]:
    dropbox_fake.add_app(APP_KEY, APP_SECRET)
    settings = dropbox_settings(tmp_path, dropbox_fake)
    store = Store(settings.effective_database_url, auto_upgrade=True)
    accounts = []
    for name, blogs in [("ann", ["a1", "a2"]), ("bob", ["b1"])]:
        account = dropbox_fake.add_account(email=f"{name}@example.com", display_name=name)
        accounts.append(account)
        dropbox_fake.mkdir(account, "/blog")
        store.dropbox_accounts.save(
            DropboxAccountRecord(
                account_id=account,
                app_key=APP_KEY,
                refresh_token=dropbox_fake.refresh_token(account, APP_KEY),
            )
        )
        for blog_id in blogs:
            store.add_blog(
                BlogRecord(
                    id=blog_id,
                    source_kind="dropbox",
                    source_config={"location": "/blog", "account_id": account, "folder_id": "x"},
                    folder=str(tmp_path / blog_id),
                )
            )
    stopping, fired = threading.Event(), Fired()
    longpolls = LongPolls(store, settings, fired, stopping)
    longpolls.follow(store.dropbox_accounts.blogs_by_account())
    yield dropbox_fake, longpolls, fired, accounts
    stopping.set()
    store.close()


def _polling(fake: Any, count: int) -> None:
    wait_until(lambda: fake.calls["files/list_folder/longpoll"] >= count, 10, "long-polls")
    time.sleep(0.1)  # the request is in the fake's hands, waiting


def test_a_change_triggers_the_blogs_of_its_account_only(polls: Any) -> None:
    fake, _, fired, (ann, bob) = polls
    _polling(fake, 2)
    fake.put(bob, "/blog/post.md", b"x")
    wait_until(lambda: fired.blogs() == ["b1"], 10, "bob's blog to be triggered")
    fake.put(ann, "/blog/post.md", b"x")
    wait_until(lambda: sorted(fired.blogs()) == ["a1", "a2", "b1"], 10, "ann's blogs")


def test_the_backoff_dropbox_asks_for_is_honoured(polls: Any) -> None:
    fake, _, fired, (_, bob) = polls
    fake.longpoll_backoff = 2
    _polling(fake, 2)
    fake.put(bob, "/blog/one.md", b"1")
    wait_until(lambda: len(fired.blogs()) == 1, 10, "the first trigger")
    fake.put(bob, "/blog/two.md", b"2")
    wait_until(lambda: len(fired.blogs()) == 2, 10, "the second trigger")
    (first, _), (second, _) = fired.events
    assert second - first >= 1.9, "the next long-poll did not wait for the backoff"


def test_an_account_whose_blogs_are_gone_stops_polling(polls: Any) -> None:
    fake, longpolls, fired, (ann, bob) = polls
    _polling(fake, 2)
    longpolls.follow({ann: ["a1", "a2"]})
    fake.put(bob, "/blog/post.md", b"x")  # wakes bob's poll, which finds no blogs
    fake.put(ann, "/blog/post.md", b"x")
    wait_until(lambda: sorted(fired.blogs()) == ["a1", "a2"], 10, "ann's blogs")
    time.sleep(0.3)
    assert "b1" not in fired.blogs()
