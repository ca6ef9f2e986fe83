"""One reconcile of one blog: observe -> plan -> execute, until the source is quiet.

This is the imperative shell around the pure planner: it reads the store, asks
the source what changed, saves the observation with its cursor in one
transaction, plans, lets the executor apply the plan and records each batch of
outcomes in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.drift import repair_drift
from controller.errors import LeaseLost, PassStopped
from controller.leases import Leases, open_leases
from controller.metrics import METRICS, Metrics
from controller.pool.builds import PoolBuilds
from controller.pool.resilient import shared_pool
from controller.schedule import PassPolicy
from controller.settings import Settings
from controller.sources import open_source
from controller.store import BlogRecord, Store
from controller.store.apply import Applied
from controller.store.sql import now_utc
from controller.store.trees import Region
from reconcilers.build import builders
from reconcilers.build.jobs import BuildRunner
from reconcilers.core.machine import State
from reconcilers.core.plan import Plan, Set
from reconcilers.core.planner import classify, guard, plan
from reconcilers.core.tree import Kind, Node, ancestors
from reconcilers.errors import ControllerError
from reconcilers.executor import Executor
from reconcilers.outcomes import (
    BuildCrash,
    BuildFailure,
    FetchFailed,
    Installed,
    Moved,
    Outcome,
    Rebuilt,
)
from reconcilers.sources.base import Observation, Source, Watchable

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class PassReport:
    blog: str
    folder: str
    actions: dict[str, int] = field(default_factory=lambda: {"set": 0, "move": 0, "drop": 0})
    errors: int = 0
    passes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    drifted: int = 0
    #: The pass re-observed only watched paths (no walk, no whole-tree load).
    scoped: bool = False
    #: Not run: the blog was no longer due once its lease was held.
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "blog": self.blog,
            "actions": dict(self.actions),
            "errors": self.errors,
            "passes": self.passes,
            "seconds": round(self.seconds, 6),
        }


class _StoredTree(Mapping[str, Node]):
    """The stored remote tree, read from the store only as far as the source asks.

    A settled pass whose source reports nothing (a Dropbox ``continue`` with
    no entries, a git head that did not move) then costs no O(n) load, and
    one that reports a few entries costs a point lookup each: the whole tree
    is read only when the source iterates it or looks up more than
    ``LOOKUPS`` paths. Lookups run before the page that changes them is saved.
    A listing from scratch (no cursor) reports every path, so ``whole`` reads
    the tree in one query up front instead of a query per path first.
    """

    LOOKUPS = 256

    def __init__(
        self, load: Callable[[Region | None], dict[str, Node]], *, whole: bool = False
    ) -> None:
        self._load = load
        self._tree: dict[str, Node] | None = None
        self._some: dict[str, Node | None] = {}
        if whole:
            self._nodes()

    @property
    def whole(self) -> bool:
        """Whether the whole tree was read (a plan over all of it costs nothing more)."""
        return self._tree is not None

    def _nodes(self) -> dict[str, Node]:
        if self._tree is None:
            self._tree = self._load(None)
        return self._tree

    def __getitem__(self, key: str) -> Node:
        if self._tree is None and (key in self._some or len(self._some) < self.LOOKUPS):
            if key not in self._some:
                self._some[key] = self._load(Region.exactly([key])).get(key)
            node = self._some[key]
            if node is None:
                raise KeyError(key)
            return node
        return self._nodes()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes())

    def __len__(self) -> int:
        return len(self._nodes())


def _paths(observation: Observation) -> Iterator[str]:
    yield from observation.deletes
    yield from (node.path for node in observation.upserts)


def _apply_observation(remote: dict[str, Node], observation: Observation) -> None:
    for path in observation.deletes:
        remote.pop(path, None)
    for node in observation.upserts:
        remote[node.path] = node


def pooled_builds(settings: Settings) -> BuildRunner:
    """Builds in the process's shared supervised pool, with the configured builders."""
    rules = builders.Rules.with_overrides(settings.builders)
    rules.check()
    builders.configure(rules)
    pool = shared_pool(
        settings.build_workers or None,
        timeout=settings.build_timeout,
        memory_limit=settings.build_memory_limit or None,
    )
    return PoolBuilds(pool)


class Reconciler:
    """Runs passes, each under the blog's lease; every store write is fenced by it."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        leases: Leases | None = None,
        *,
        policy: PassPolicy | None = None,
        metrics: Metrics = METRICS,
        builds: BuildRunner | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.builds = builds if builds is not None else pooled_builds(settings)
        self._own_leases = leases is None
        self.leases = leases if leases is not None else open_leases(store, settings, metrics)
        self.policy = policy or PassPolicy(settings)
        self.metrics = metrics

    def close(self) -> None:
        if self._own_leases:
            self.leases.close()

    def reconcile(
        self,
        blog_id: str,
        *,
        full: bool = False,
        progress: Progress | None = None,
        wait: float = 0.0,
        stop: Callable[[], bool] | None = None,
        paths: Collection[str] | None = None,
        due: Callable[[BlogRecord], bool] | None = None,
    ) -> PassReport:
        """One pass over ``blog_id``: waits up to ``wait`` s for its lease (LeaseBusy after).

        ``stop`` is asked at every checkpoint; when it says so the pass ends
        there (``PassStopped``), as safely as after a crash. ``paths`` (a
        watch's report of what changed) lets a source that can re-observe
        them alone skip its walk; the pass falls back to a whole one whenever
        the source cannot answer for them, the blog needs validation, or
        ``full`` is asked. ``due`` is asked once the lease is held: a daemon
        replica that read the blog as due just before another replica's pass
        ended skips it then (``skipped``) instead of running it again.
        """
        with self.leases.hold(blog_id, wait) as lease:
            if due is not None:
                blog = self.store.get_blog(blog_id)
                if not due(blog):
                    return PassReport(blog=blog.id, folder=blog.folder, skipped=True)

            def checkpoint() -> None:
                lease.check()
                if stop is not None and stop():
                    raise PassStopped("the pass stopped for shutdown", blog_id=blog_id)

            return self._pass(blog_id, full, progress, checkpoint, paths)

    def _pass(
        self,
        blog_id: str,
        full: bool,
        progress: Progress | None,
        checkpoint: Callable[[], None],
        paths: Collection[str] | None = None,
    ) -> PassReport:
        blog = self.store.get_blog(blog_id)
        started = time.monotonic()
        full = full or blog.dirty
        report = PassReport(blog=blog.id, folder=blog.folder)
        error: ControllerError | None = None
        try:
            self._run(blog, full, report, progress, checkpoint, None if full else paths)
        except LeaseLost:
            self.metrics.reconcile_total.labels(result="error").inc()
            self.metrics.reconcile_errors_total.inc()
            raise
        except ControllerError as exc:
            if exc.blog_id is None:
                exc.blog_id = blog.id
            error = exc
        report.seconds = time.monotonic() - started
        self._record(blog, report, error, full)
        log.info(
            "reconciled",
            extra={
                "blog": blog.id,
                "result": "ok" if error is None else "error",
                "seconds": report.seconds,
                "scoped": report.scoped,
                **report.actions,
            },
        )
        if error is not None:
            raise error
        return report

    def _record(
        self, blog: BlogRecord, report: PassReport, error: ControllerError | None, full: bool
    ) -> None:
        now_ns = time.time_ns()
        generation: int | None = blog.generation
        if isinstance(error, PassStopped):
            # Neither a failure nor done: due again at once, for whoever runs next.
            result, generation, failures, next_ns = "stopped", None, blog.failures, now_ns
        elif error is None and report.scoped and blog.next_pass_at_ns is not None:
            # A watched edit does not stand for the periodic walk: keep its time.
            result, failures, next_ns = "ok", 0, blog.next_pass_at_ns
        elif error is None:
            result, failures = "ok", 0
            settled = self.store.get_blog(blog.id).settled_until_ns
            next_ns = self.policy.next_after_success(now_ns, settled)
        else:
            result, failures = "error", blog.failures + 1
            next_ns = self.policy.next_after_failure(now_ns, failures)
        self.store.record_pass(
            blog.id,
            at=now_utc(),
            seconds=report.seconds,
            result=result,
            message=None if error is None else str(error),
            history_limit=self.settings.history_limit,
            generation=generation,
            next_pass_at_ns=next_ns,
            failures=failures,
            full=full and error is None,
        )
        if result == "stopped":
            return
        self.metrics.reconcile_time_seconds.observe(report.seconds)
        self.metrics.reconcile_total.labels(result="success" if error is None else "error").inc()
        if error is not None:
            self.metrics.reconcile_errors_total.inc()
        for action, count in report.actions.items():
            self.metrics.actions_total.labels(action=action).inc(count)

    def _run(
        self,
        blog: BlogRecord,
        full: bool,
        report: PassReport,
        progress: Progress | None,
        checkpoint: Callable[[], None],
        paths: Collection[str] | None = None,
    ) -> None:
        blog_id, folder = blog.id, Path(blog.folder)
        source = open_source(blog, self.store, self.settings)
        folder.mkdir(parents=True, exist_ok=True)
        executor = Executor(
            folder,
            source,
            blog_id=blog_id,
            batch_size=self.settings.install_batch,
            workers=source.concurrency,
            builds=self.builds,
            checkpoint=checkpoint,
        )
        checkpoint()
        executor.clear_staging()
        self.store.take_retry_requests(blog_id)
        if full:
            executor.sweep()
            report.drifted = repair_drift(self.store, blog_id, executor)
        totals = Applied()
        if paths and isinstance(source, Watchable):
            report.scoped = self._scoped(
                blog_id, source, executor, paths, totals, report, progress, checkpoint
            )
        if not report.scoped:
            self._rounds(blog, full, source, executor, totals, report, progress, checkpoint)
        report.actions = {"set": totals.set, "move": totals.move, "drop": totals.drop}
        report.errors = totals.errors
        report.failures = totals.failures

    def _scoped(
        self,
        blog_id: str,
        source: Watchable,
        executor: Executor,
        paths: Collection[str],
        totals: Applied,
        report: PassReport,
        progress: Progress | None,
        checkpoint: Callable[[], None],
    ) -> bool:
        """Rounds over the region of ``paths`` alone; False when the source needs a walk.

        The plan sees the same paths in both trees (the region), so it is the
        whole-tree plan restricted to them: nothing outside is touched.
        """
        region = Region.around(paths)
        last: Plan | None = None
        for _ in range(self.settings.max_rounds):
            checkpoint()
            report.passes += 1
            known = self.store.load_remote(blog_id, region)
            page = source.changes_at(paths, known)
            if page is None:
                return False
            if not page.empty:
                self.store.save_observation(blog_id, page)
            remote = dict(known)
            _apply_observation(remote, page)
            actions = plan(remote, self.store.load_synced(blog_id, region), now_ns=time.time_ns())
            if not actions or (page.empty and actions == last):
                break
            last = actions
            self._execute(blog_id, executor, actions, totals, progress)
        return True

    def _rounds(
        self,
        blog: BlogRecord,
        full: bool,
        source: Source,
        executor: Executor,
        totals: Applied,
        report: PassReport,
        progress: Progress | None,
        checkpoint: Callable[[], None],
    ) -> None:
        """Observe -> plan -> execute over the whole trees until the source is quiet."""
        blog_id = blog.id
        # Full validation also lists the source in full (Dropbox: no continue).
        cursor = None if full else blog.cursor
        settled_until = None if full else blog.settled_until_ns
        last: Plan | None = None
        regional = False
        for _ in range(self.settings.max_rounds):
            checkpoint()
            report.passes += 1
            known = _StoredTree(
                lambda region: self.store.load_remote(blog_id, region), whole=cursor is None
            )
            pages: list[Observation] = []
            for page in source.changes(cursor, known):
                if not page.empty or page.cursor != cursor:
                    self.store.save_observation(blog_id, page)
                    cursor = page.cursor
                if not page.empty:
                    pages.append(page)
                checkpoint()
            observed = bool(pages)
            now_ns = time.time_ns()
            if not observed and settled_until is not None and now_ns < settled_until:
                break
            if not observed and regional:
                break  # what the last round saw was planned; a later pass plans the rest
            changed = {p for page in pages for p in _paths(page)}
            if observed and not full and not known.whole and len(changed) <= known.LOOKUPS:
                # A few changes: plan on their region (saved pages included).
                region = Region.around(changed)
                actions = plan(
                    self.store.load_remote(blog_id, region),
                    self.store.load_synced(blog_id, region),
                    now_ns=now_ns,
                )
                if not actions:
                    break
                regional, last = True, actions
                self._execute(blog_id, executor, actions, totals, progress)
                continue
            regional = False
            remote = dict(known)
            for page in pages:
                _apply_observation(remote, page)
            synced = self.store.load_synced(blog_id)
            actions = plan(remote, synced, now_ns=now_ns)
            if not actions:
                self.store.mark_settled(blog_id)
                break
            if not observed and actions == last:
                break
            synced_files = sum(1 for r in synced.values() if r.node.kind is Kind.FILE and r.on_disk)
            guard(
                actions,
                synced_files,
                remote_empty=not classify(remote).wanted,
                max_share=self.settings.max_drop_share,
            )
            last = actions
            settled_until = None
            self._execute(blog_id, executor, actions, totals, progress)

    def _execute(
        self,
        blog_id: str,
        executor: Executor,
        actions: Plan,
        totals: Applied,
        progress: Progress | None,
    ) -> None:
        total = sum(1 for a in actions if isinstance(a, Set))
        done = 0
        self.store.set_dirty(blog_id, True)
        applied = Applied()
        for batch in executor.run(actions):
            applied.add(self.store.record(blog_id, batch, time.time_ns()))
            self._count(batch)
            moved = [o.dst for o in batch if isinstance(o, Moved)]
            if moved:
                rebuilt = self._rebuild(blog_id, executor, moved)
                applied.add(self.store.record(blog_id, rebuilt, time.time_ns()))
                self._count(rebuilt)
            done += sum(1 for o in batch if isinstance(o, Installed | FetchFailed))
            if progress is not None and total:
                progress(min(done, total), total)
        totals.add(applied)
        if not applied.needs_validation:
            self.store.set_dirty(blog_id, False)

    def _count(self, outcomes: list[Outcome]) -> None:
        """Bytes installed and builds that failed, once they are recorded."""
        fetched = sum(o.stat.size for o in outcomes if isinstance(o, Installed))
        if fetched:
            self.metrics.bytes_fetched_total.inc(fetched)
        failed = sum(
            1
            for o in outcomes
            if isinstance(o, Installed | Rebuilt) and isinstance(o.entry, BuildFailure | BuildCrash)
        )
        if failed:
            self.metrics.build_errors_total.inc(failed)

    def _rebuild(self, blog_id: str, executor: Executor, roots: list[str]) -> list[Outcome]:
        """Moved posts are rebuilt from their local copy: same bytes, new path.

        The move's record put them in ``building`` (see ``apply._await_rebuild``).
        """
        wanted = set(roots)
        synced = self.store.load_synced(blog_id)
        return executor.rebuild_all(
            [
                row.node
                for path, row in sorted(synced.items())
                if row.node.kind is Kind.FILE
                and row.state is State.BUILDING
                and (path in wanted or any(a in wanted for a in ancestors(path)))
            ]
        )
