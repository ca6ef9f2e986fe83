"""Watching local sources: a change in a ``local:`` blog's folder triggers a pass.

watchdog (inotify on Linux) reports every event; a burst (an editor's save,
a git checkout) becomes one trigger per blog per ``COALESCE_S``, so the store
sees a handful of generation bumps, not thousands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from controller.store import BlogRecord

log = logging.getLogger(__name__)

COALESCE_S = 0.1


class _Handler(FileSystemEventHandler):
    def __init__(self, blog_id: str, changed: Callable[[str], None]) -> None:
        self.blog_id = blog_id
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self.changed(self.blog_id)


class Watcher:
    """Keeps one recursive watch per local source; calls ``fire(blog_id)`` on change."""

    def __init__(self, fire: Callable[[str], None]) -> None:
        self.fire = fire
        self._observer = Observer()
        self._watches: dict[str, tuple[str, ObservedWatch]] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="watch-flush", daemon=True)

    def start(self) -> None:
        self._observer.start()
        self._flusher.start()

    def follow(self, blogs: Iterable[BlogRecord]) -> None:
        """Watch exactly the local sources among ``blogs`` (called at every poll)."""
        wanted = {
            b.id: str(b.source_config.get("location", ""))
            for b in blogs
            if b.source_kind == "local"
        }
        for blog_id, (root, watch) in list(self._watches.items()):
            if wanted.get(blog_id) != root:
                self._observer.unschedule(watch)
                del self._watches[blog_id]
        for blog_id, root in wanted.items():
            if blog_id in self._watches or not Path(root).is_dir():
                continue
            try:
                watch = self._observer.schedule(
                    _Handler(blog_id, self._changed), root, recursive=True
                )
            except OSError as exc:
                log.warning("cannot watch the source", extra={"blog": blog_id, "error": str(exc)})
                continue
            self._watches[blog_id] = (root, watch)

    def watching(self) -> frozenset[str]:
        return frozenset(self._watches)

    def _changed(self, blog_id: str) -> None:
        with self._lock:
            self._pending.add(blog_id)

    def _flush_loop(self) -> None:
        while not self._stop.wait(COALESCE_S):
            with self._lock:
                pending, self._pending = self._pending, set()
            for blog_id in sorted(pending):
                try:
                    self.fire(blog_id)
                except Exception:  # a trigger lost here is caught by the next poll/resync
                    log.exception("watch trigger failed", extra={"blog": blog_id})

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)
