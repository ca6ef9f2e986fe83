"""``controller run``: the control loop.

Level-triggered, as a Kubernetes controller: the queue holds blog ids only,
and a worker that takes one reads the blog's current state and runs a pass if
it is due (a trigger newer than its last pass, the periodic resync, a failed
file's retry, or the end of a backoff). The schedule lives in the store, so
replicas share it and a restart loses nothing; the queue only makes one
process's workers fast and exclusive.

Sources of work: a store poll (every ``poll_interval``; with Redis, a
published trigger wakes every replica at once), watches on local sources, and
re-adds after a pass that a trigger overtook.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from controller.errors import LeaseBackendError, LeaseBusy, LeaseLost, PassStopped, UnknownBlog
from controller.leases import open_leases
from controller.metrics import METRICS, Metrics
from controller.pool.builds import PoolBuilds
from controller.reconcile import Reconciler
from controller.schedule import PassPolicy
from controller.settings import Settings
from controller.store import BlogRecord, Store
from controller.store.sql import now_utc
from controller.triggers import Triggers
from controller.watch import Watcher
from controller.workqueue import WorkQueue

if TYPE_CHECKING:
    from controller.dropbox.longpoll import LongPolls
from reconcilers.errors import ControllerError

log = logging.getLogger(__name__)


def is_due(blog: BlogRecord, now_ns: int) -> bool:
    return (
        blog.generation > blog.pass_generation
        or blog.next_pass_at_ns is None
        or blog.next_pass_at_ns <= now_ns
    )


class Daemon:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        watch: bool = True,
        longpoll: bool = True,
        metrics: Metrics = METRICS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.queue = WorkQueue(metrics=metrics)
        self.leases = open_leases(store, settings, metrics)
        self.policy = PassPolicy(settings)
        self.reconciler = Reconciler(
            store, settings, self.leases, policy=self.policy, metrics=metrics
        )
        self.triggers = Triggers(store, settings)
        self.triggers.on_fire(self.queue.add)
        self.watcher = Watcher(self._fire) if watch else None
        self.stopping = threading.Event()
        self._wake = threading.Event()
        #: Long-polls start with the first Dropbox blog (the SDK is not imported before).
        self._longpoll = longpoll
        self.longpolls: LongPolls | None = None
        self._threads: list[threading.Thread] = []
        #: Blogs whose lease backend failed: not retried before this (monotonic)
        #: time. The store cannot hold this backoff: without a lease nothing may
        #: write the blog's row.
        self._not_before: dict[str, float] = {}
        self._backend_failures: dict[str, int] = {}
        #: Blog -> paths its watch reported since its last pass began (None: walk).
        self._hints: dict[str, frozenset[str] | None] = {}
        self._hints_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if isinstance(self.reconciler.builds, PoolBuilds):
            self.reconciler.builds.pool.warm()
        if self.watcher is not None:
            self.watcher.start()
        self.triggers.listen(self._woken)
        for n in range(self.settings.workers):
            thread = threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        poller = threading.Thread(target=self._poll, name="poller", daemon=True)
        poller.start()
        self._threads.append(poller)
        log.info("daemon started", extra={"workers": self.settings.workers})

    def request_stop(self) -> None:
        """Stop taking work; in-flight passes end at their next checkpoint."""
        if not self.stopping.is_set():
            log.info("stopping: no new passes; in-flight passes stop at their next checkpoint")
        self.stopping.set()
        self.queue.shut_down()
        self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested (or ``timeout``); True once stopping."""
        return self.stopping.wait(timeout)

    def shutdown(self) -> bool:
        """Drain within the grace period, release leases; True when every thread ended."""
        self.request_stop()
        deadline = time.monotonic() + self.settings.shutdown_grace
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        clean = not any(t.is_alive() for t in self._threads)
        if self.watcher is not None:
            self.watcher.stop()
        self.triggers.close()
        self.leases.close()
        log.info("daemon stopped", extra={"clean": clean})
        return clean

    # -- sources of work ---------------------------------------------------------

    def _poll(self) -> None:
        while not self.stopping.is_set():
            try:
                blogs = self.store.list_blogs()
                if self.watcher is not None:
                    self.watcher.follow(blogs)
                self._follow_dropbox(blogs)
                now_ns, now = time.time_ns(), time.monotonic()
                for blog in blogs:
                    if is_due(blog, now_ns) and self._not_before.get(blog.id, 0.0) <= now:
                        self.queue.add(blog.id)
            except ControllerError as exc:
                log.error("poll failed", extra={"error": str(exc)})
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()

    def _follow_dropbox(self, blogs: list[BlogRecord]) -> None:
        if not self._longpoll:
            return
        if self.longpolls is None:
            if not any(b.source_kind == "dropbox" for b in blogs):
                return
            from controller.dropbox.longpoll import LongPolls

            self.longpolls = LongPolls(self.store, self.settings, self._fire, self.stopping)
        self.longpolls.follow(self.store.dropbox_accounts.blogs_by_account())

    def _fire(self, blog_id: str, paths: frozenset[str] | None = None) -> None:
        """A watched source changed: note what, record the trigger durably, run it here."""
        with self._hints_lock:
            known = self._hints.get(blog_id, frozenset())
            self._hints[blog_id] = None if paths is None or known is None else known | paths
        self.triggers.fire(blog_id)

    def _take_paths(self, blog: BlogRecord, now_ns: int) -> frozenset[str] | None:
        """The watched paths to re-observe alone, if only a watch made ``blog`` due.

        A blog due for its periodic pass, a retry or validation gets a whole
        pass; so does one whose watch saw too much. Taken paths are gone:
        should the pass fail, the next one walks.
        """
        with self._hints_lock:
            paths = self._hints.pop(blog.id, None)
        if not paths or blog.next_pass_at_ns is None or blog.next_pass_at_ns <= now_ns:
            return None
        return paths

    def _woken(self, blog_id: str) -> None:
        self.queue.add(blog_id)

    # -- workers ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            blog_id = self.queue.get()
            if blog_id is None:
                return
            self.metrics.active_workers.inc()
            try:
                self._process(blog_id)
            except Exception:  # a bug in one pass must not kill the worker
                log.exception("pass crashed", extra={"blog": blog_id})
            finally:
                self.metrics.active_workers.dec()
                self.queue.done(blog_id)

    def _process(self, blog_id: str) -> None:
        try:
            blog = self.store.get_blog(blog_id)
        except UnknownBlog:
            self.queue.forget(blog_id)
            return
        now_ns = time.time_ns()
        if not is_due(blog, now_ns) or self.stopping.is_set():
            return
        full = self.policy.wants_full(blog, now_utc())
        paths = self._take_paths(blog, now_ns)
        try:
            self.reconciler.reconcile(
                blog_id,
                full=full,
                stop=self.stopping.is_set,
                paths=paths,
                due=lambda current: is_due(current, time.time_ns()),
            )
        except LeaseBusy:
            # Another process runs it; the trigger stays recorded, so look again later.
            self.queue.add_after(blog_id, self.settings.poll_interval)
            return
        except LeaseBackendError as exc:
            failures = self._backend_failures.get(blog_id, 0) + 1
            self._backend_failures[blog_id] = failures
            delay = self.policy.backoff(failures)
            self._not_before[blog_id] = time.monotonic() + delay
            self.metrics.workqueue_retries_total.inc()
            log.error(
                "lease backend unreachable; retrying with backoff",
                extra={"blog": blog_id, "error": str(exc), "retry_in_s": round(delay, 1)},
            )
            return
        except PassStopped:
            return
        except LeaseLost as exc:
            log.error("pass stopped: lease lost", extra={"blog": blog_id, "error": str(exc)})
            self.queue.add_rate_limited(blog_id)
            return
        except ControllerError as exc:
            # Recorded with its backoff in the store; the poll brings it back when due.
            log.warning("pass failed", extra={"blog": blog_id, "error": str(exc)})
            self.metrics.workqueue_retries_total.inc()
            return
        self.queue.forget(blog_id)
        self._not_before.pop(blog_id, None)
        self._backend_failures.pop(blog_id, None)
        after = self.store.get_blog(blog_id)
        if after.generation > after.pass_generation:
            self.queue.add(blog_id)  # a trigger arrived during the pass
