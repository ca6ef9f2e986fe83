"""Long-polling Dropbox for deployments without a public webhook URL.

One thread per connected account holds a ``list_folder/longpoll`` on the
account's root; when it reports changes, a fresh cursor is taken *before*
the account's blogs are triggered, so a change made after the trigger is
seen by the next long-poll and one made before it by the triggered pass.
``backoff`` answers are honoured; errors retry with capped backoff.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dropbox import exceptions as dbx_errors

from controller.dropbox.client import make_client
from controller.settings import Settings
from controller.store import Store

log = logging.getLogger(__name__)

#: Dropbox may answer up to 90 s after the requested timeout.
LONGPOLL_SLACK = 120.0
ERROR_BACKOFF_CAP = 300.0


class LongPolls:
    """Keeps one long-poll thread per account that has blogs."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        fire: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.store = store
        self.settings = settings
        self.fire = fire
        self.stopping = stopping
        self._blogs: dict[str, list[str]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def follow(self, blogs_by_account: Mapping[str, list[str]]) -> None:
        """Start polling new accounts; threads of accounts without blogs end on their own."""
        with self._lock:
            self._blogs = {a: list(b) for a, b in blogs_by_account.items() if b}
            for account in self._blogs:
                thread = self._threads.get(account)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=self._run, args=(account,), name=f"longpoll-{account}", daemon=True
                    )
                    self._threads[account] = thread
                    thread.start()

    def blogs_of(self, account: str) -> list[str]:
        with self._lock:
            return list(self._blogs.get(account, ()))

    def _client(self, account_id: str) -> Any:
        account = self.store.dropbox_accounts.get(account_id)
        return make_client(
            self.settings,
            access_token=account.access_token,
            refresh_token=account.refresh_token,
            app_key=account.app_key,
            pool=2,
            timeout=self.settings.dropbox_longpoll_timeout + LONGPOLL_SLACK,
        )

    def _run(self, account: str) -> None:
        cursor: str | None = None
        failures = 0
        client: Any = None
        while not self.stopping.is_set() and self.blogs_of(account):
            try:
                if client is None:
                    client = self._client(account)
                if cursor is None:
                    cursor = self._latest(client)
                result = client.files_list_folder_longpoll(
                    cursor, timeout=self.settings.dropbox_longpoll_timeout
                )
                failures = 0
                if result.changes:
                    cursor = self._latest(client)
                    for blog_id in self.blogs_of(account):
                        log.info("long-poll", extra={"blog": blog_id, "action": "trigger"})
                        self.fire(blog_id)
                if result.backoff:
                    self.stopping.wait(result.backoff)
            except Exception as exc:  # any failure: the thread must outlive it
                if isinstance(exc, dbx_errors.ApiError):
                    cursor = None  # a reset cursor: take a new one
                if isinstance(exc, dbx_errors.AuthError):
                    client = None
                failures += 1
                delay = min(ERROR_BACKOFF_CAP, 2.0**failures) * (0.5 + random.random() / 2)
                log.warning(
                    "long-poll failed; retrying",
                    extra={"account": account, "error": repr(exc), "retry_in_s": round(delay, 1)},
                )
                self.stopping.wait(delay)

    @staticmethod
    def _latest(client: Any) -> str:
        cursor: str = client.files_list_folder_get_latest_cursor("", recursive=True).cursor
        return cursor
