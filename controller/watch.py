"""Watching local sources: a change in a ``local:`` blog's folder triggers a pass.

watchdog (inotify on Linux) reports every event; a burst (an editor's save,
a git checkout) becomes one trigger per blog per ``COALESCE_S``, so the store
sees a handful of generation bumps, not thousands. Each trigger carries the
paths that changed (relative to the source), so the pass can re-observe just
those; a burst of more than ``MAX_PATHS``, an event on the source folder
itself or a path outside it carries None instead: walk everything.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from controller.store import BlogRecord
from reconcilers.sources.names import is_ignored_name

log = logging.getLogger(__name__)

COALESCE_S = 0.1
MAX_PATHS = 256

#: A folder's own "modified" event only says its entries changed; they have
#: events of their own.
_NOT_CHANGES = ("opened", "closed_no_write")


class _Handler(FileSystemEventHandler):
    def __init__(self, blog_id: str, root: str, changed: Callable[[str, str | None], None]) -> None:
        self.blog_id = blog_id
        self.root = os.path.abspath(root)
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _NOT_CHANGES:
            return
        if event.is_directory and event.event_type == "modified":
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.changed(self.blog_id, self._relative(os.fsdecode(raw)))

    def _relative(self, path: str) -> str | None:
        """The path inside the source; None for the source itself, "" for nothing to observe."""
        rel = os.path.relpath(os.path.abspath(path), self.root)
        if rel == ".":
            return None
        if rel == ".." or rel.startswith(".." + os.sep):
            return ""  # the far side of a move into or out of the source
        parts = rel.split(os.sep)
        if any(is_ignored_name(p) for p in parts[:-1]):
            return ""  # inside a folder the blog ignores: nothing to observe
        return "/".join(parts)


class Watcher:
    """Keeps one recursive watch per local source; calls ``fire(blog_id)`` on change."""

    def __init__(self, fire: Callable[[str, frozenset[str] | None], None]) -> None:
        self.fire = fire
        self._observer = Observer()
        self._watches: dict[str, tuple[str, ObservedWatch]] = {}
        #: Blog -> changed paths since the last flush (None: too many, or unknown).
        self._pending: dict[str, set[str] | None] = {}
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
                    _Handler(blog_id, root, self._changed), root, recursive=True
                )
            except OSError as exc:
                log.warning("cannot watch the source", extra={"blog": blog_id, "error": str(exc)})
                continue
            self._watches[blog_id] = (root, watch)

    def watching(self) -> frozenset[str]:
        return frozenset(self._watches)

    def _changed(self, blog_id: str, path: str | None) -> None:
        with self._lock:
            if path == "":
                self._pending.setdefault(blog_id, set())
                return
            paths = self._pending.setdefault(blog_id, set())
            if paths is None:
                return
            if path is None or len(paths) >= MAX_PATHS:
                self._pending[blog_id] = None
            else:
                paths.add(path)

    def _flush_loop(self) -> None:
        while not self._stop.wait(COALESCE_S):
            with self._lock:
                pending, self._pending = self._pending, {}
            for blog_id, paths in sorted(pending.items()):
                if paths is not None and not paths:
                    continue  # only ignored names changed
                try:
                    self.fire(blog_id, None if paths is None else frozenset(paths))
                except Exception:  # a trigger lost here is caught by the next poll/resync
                    log.exception("watch trigger failed", extra={"blog": blog_id})

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)
