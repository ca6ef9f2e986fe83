"""Triggers: "this blog may have changed, run it". Durable first, fast second.

``fire`` bumps the blog's generation in the store (durable: a daemon that is
down, busy or restarting still sees it) and then, with Redis configured,
publishes the blog id so every replica wakes at once instead of at its next
poll. A failed publish loses nothing but those seconds. A daemon in this
process (``controller run --http`` serving the webhook and the dashboard)
is woken directly, Redis or not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from controller.settings import Settings
from controller.store import Store

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

CHANNEL = "controller:triggers"


class Triggers:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.redis_url = settings.redis_url
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._publisher: redis.Redis | None = None
        self._local: list[Callable[[str], None]] = []

    def on_fire(self, wake: Callable[[str], None]) -> None:
        """Also call ``wake(blog_id)`` after every trigger fired through this object."""
        self._local.append(wake)

    def fire(self, blog_id: str) -> int:
        generation = self.store.trigger(blog_id)
        for wake in self._local:
            wake(blog_id)
        if self.redis_url:
            from redis.exceptions import RedisError

            from controller.leases.redis import connect

            try:
                # One client (a connection pool) for every trigger of this process:
                # a watched folder can fire many times a second.
                if self._publisher is None:
                    self._publisher = connect(self.redis_url)
                self._publisher.publish(CHANNEL, blog_id)
            except RedisError as exc:
                log.warning(
                    "trigger stored but replicas not woken (they will poll)",
                    extra={"blog": blog_id, "error": str(exc)},
                )
        return generation

    def listen(self, wake: Callable[[str], None]) -> None:
        """Call ``wake(blog_id)`` for every trigger any replica publishes (Redis only)."""
        if not self.redis_url or self._listener is not None:
            return
        self._listener = threading.Thread(
            target=self._listen, args=(self.redis_url, wake), name="trigger-listener", daemon=True
        )
        self._listener.start()

    def _listen(self, url: str, wake: Callable[[str], None]) -> None:
        from redis.exceptions import RedisError

        from controller.leases.redis import connect

        while not self._stop.is_set():
            try:
                pubsub = connect(url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        wake(str(message["data"]))
                pubsub.close()
            except RedisError as exc:
                log.warning("trigger subscription lost; retrying", extra={"error": str(exc)})
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        if self._publisher is not None:
            self._publisher.close()
