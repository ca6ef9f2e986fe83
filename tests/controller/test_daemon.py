"""The control loop in process: ``Daemon`` on SQLite, driven through the store.

Each test builds its own ``Metrics()`` and a daemon with a short poll and a
long resync, so every pass it sees has a known cause. Passes that must be "in
flight" are held deterministically by a gate in the source: the pass blocks in
its first observation until the test opens the gate.
"""

from __future__ import annotations

import itertools
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from support import tree, wait_until

import controller.reconcile
from controller.daemon import Daemon, is_due
from controller.errors import LeaseBusy
from controller.leases import Leases
from controller.leases.sql import SqlLeases
from controller.metrics import Metrics
from controller.settings import Settings
from controller.sources import open_source
from controller.store import BlogRecord, Store
from reconcilers.core.tree import Node
from reconcilers.sources.base import Observation
from reconcilers.sources.local import LocalSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"
RESYNC = 3600.0
SECOND = 10**9


# -- helpers ---------------------------------------------------------------------------------


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    assert value is not None, f"no sample {name}{labels}"
    return value


def successes(metrics: Metrics) -> float:
    return sample(metrics, "controller_runtime_reconcile_total", result="success")


class MaxRandom(random.Random):
    """Full jitter without the jitter: every ``uniform`` draw is its upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Gate:
    """Holds the next pass of a blog in its first observation until ``open()``."""

    def __init__(self) -> None:
        self.armed: set[str] = set()
        self.entered = threading.Event()
        self.released = threading.Event()
        #: Blogs whose passes after the armed one wait until ``release_all()``.
        self.blocked: set[str] = set()
        self.unblocked = threading.Event()
        self._lock = threading.Lock()

    def arm(self, blog_id: str) -> None:
        with self._lock:
            self.entered.clear()
            self.released.clear()
            self.armed.add(blog_id)

    def open(self) -> None:
        self.released.set()

    def release_all(self) -> None:
        self.released.set()
        self.unblocked.set()

    def take(self, blog_id: str) -> bool:
        with self._lock:
            if blog_id not in self.armed:
                return False
            self.armed.discard(blog_id)
            return True


class GatedSource:
    def __init__(self, inner: Any, blog_id: str, gate: Gate) -> None:
        self._inner = inner
        self._blog_id = blog_id
        self._gate = gate

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Iterable[Observation]:
        if self._gate.take(self._blog_id):
            self._gate.entered.set()
            assert self._gate.released.wait(15), "the test never opened the gate"
        elif self._blog_id in self._gate.blocked:
            self._gate.unblocked.wait(15)
        result: Iterable[Observation] = self._inner.changes(cursor, known)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()

    def gated_open_source(blog: BlogRecord, *args: Any) -> Any:
        return GatedSource(open_source(blog, *args), blog.id, gate)

    monkeypatch.setattr(controller.reconcile, "open_source", gated_open_source)
    yield gate
    gate.release_all()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'controller.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    instance = Store(url, auto_upgrade=True)
    yield instance
    instance.close()


class Blogs:
    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root

    def add(self, blog_id: str) -> tuple[Path, Path]:
        src, folder = self.root / blog_id / "src", self.root / blog_id / "blog"
        shutil.copytree(EXAMPLES, src)
        self.store.add_blog(
            BlogRecord(
                id=blog_id,
                source_kind="local",
                source_config={"location": str(src)},
                folder=str(folder),
            )
        )
        return src, folder

    def get(self, blog_id: str) -> BlogRecord:
        return self.store.get_blog(blog_id)


@pytest.fixture
def blogs(store: Store, tmp_path: Path) -> Blogs:
    return Blogs(store, tmp_path / "blogs")


@pytest.fixture
def make_daemon(
    store: Store, tmp_path: Path, gate: Gate
) -> Iterator[Callable[..., tuple[Daemon, Metrics]]]:
    made: list[Daemon] = []

    def make(*, watch: bool = False, **overrides: Any) -> tuple[Daemon, Metrics]:
        options: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": store.url,
            "redis_url": None,
            "workers": 2,
            "poll_interval": 0.1,
            "resync_interval": RESYNC,
            "shutdown_grace": 5.0,
        }
        options.update(overrides)
        metrics = Metrics()
        daemon = Daemon(store, Settings(**options), watch=watch, metrics=metrics)
        made.append(daemon)
        return daemon, metrics

    yield make
    gate.open()
    for daemon in made:
        if daemon._threads and any(t.is_alive() for t in daemon._threads):
            daemon.shutdown()


@pytest.fixture
def other_holder(url: str) -> Iterator[Callable[[str], AbstractContextManager[Any]]]:
    """Another lease holder on the same database, as a second process would be."""
    other_store = Store(url)
    leases = Leases(other_store, lambda: SqlLeases(url))
    yield lambda blog_id: leases.hold(blog_id, 0.0)
    leases.close()
    other_store.close()


# -- is_due ------------------------------------------------------------------------------------


def _record(**fields: Any) -> BlogRecord:
    return BlogRecord(id="b", source_kind="local", source_config={}, folder="/x", **fields)


NOW = 1_700_000_000 * SECOND


def test_is_due_for_a_blog_that_never_ran() -> None:
    assert is_due(_record(next_pass_at_ns=None), NOW)


def test_is_due_when_a_trigger_is_newer_than_the_last_pass() -> None:
    later = NOW + RESYNC * SECOND
    assert is_due(_record(generation=3, pass_generation=2, next_pass_at_ns=int(later)), NOW)


def test_is_due_when_the_next_pass_time_has_come() -> None:
    assert is_due(_record(generation=2, pass_generation=2, next_pass_at_ns=NOW), NOW)
    assert is_due(_record(generation=2, pass_generation=2, next_pass_at_ns=NOW - 1), NOW)


def test_is_not_due_before_its_time_without_a_new_trigger() -> None:
    assert not is_due(_record(generation=2, pass_generation=2, next_pass_at_ns=NOW + 1), NOW)
    assert not is_due(_record(next_pass_at_ns=NOW + SECOND), NOW)


# -- passes and triggers ---------------------------------------------------------------------


def test_a_blog_registered_before_start_is_reconciled(make_daemon, blogs: Blogs) -> None:
    src, folder = blogs.add("a")
    daemon, metrics = make_daemon()
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", what="the first pass")
    assert tree(folder) == tree(src)
    record = blogs.get("a")
    assert record.status == "ok" and record.failures == 0
    assert record.last_full_at is not None  # the first pass validates the folder in full
    # Next pass: the periodic resync (+-10%), not sooner.
    assert record.next_pass_at_ns is not None
    assert record.next_pass_at_ns > time.time_ns() + 0.85 * RESYNC * SECOND
    assert successes(metrics) == 1


def test_a_durable_trigger_causes_a_pass(make_daemon, blogs: Blogs) -> None:
    src, folder = blogs.add("a")
    daemon, metrics = make_daemon()
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", what="the first pass")
    first = blogs.get("a").last_pass_at
    (src / "pages" / "contact.html").write_text("<h1>Contact</h1>\n")

    generation = blogs.store.trigger("a")

    wait_until(lambda: blogs.get("a").pass_generation == generation, 5, "the triggered pass")
    assert blogs.get("a").last_pass_at != first
    assert (folder / "pages" / "contact.html").read_text() == "<h1>Contact</h1>\n"
    assert successes(metrics) == 2


def test_a_trigger_fired_in_this_process_runs_at_once_not_at_the_next_poll(
    make_daemon, blogs: Blogs
) -> None:
    # The webhook and the dashboard's retry fire through daemon.triggers in
    # `controller run --http`; without Redis they must not wait for a poll.
    src, folder = blogs.add("a")
    daemon, _ = make_daemon(poll_interval=60.0)
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", what="the first pass")
    (src / "pages" / "contact.html").write_text("<h1>Contact</h1>\n")

    generation = daemon.triggers.fire("a")

    wait_until(lambda: blogs.get("a").pass_generation == generation, 5, "the triggered pass")
    assert (folder / "pages" / "contact.html").read_text() == "<h1>Contact</h1>\n"


def test_a_trigger_during_a_pass_runs_the_blog_again_right_after(
    make_daemon, blogs: Blogs, gate: Gate
) -> None:
    src, folder = blogs.add("a")
    # A long poll: only the daemon's own re-add after the pass can start the second one.
    daemon, metrics = make_daemon(poll_interval=30.0)
    gate.arm("a")
    daemon.start()
    assert gate.entered.wait(5), "the first pass did not start"

    (src / "late.txt").write_text("Title: Late\n\nwritten during the first pass\n")
    generation = blogs.store.trigger("a")
    assert blogs.get("a").pass_generation == 0
    gate.open()

    took = wait_until(
        lambda: blogs.get("a").pass_generation == generation, 5, "the pass after the trigger"
    )
    assert took < 5.0  # not the next poll, 30 s away
    wait_until(lambda: blogs.get("a").last_pass_result == "ok")
    assert successes(metrics) == 2
    assert tree(folder) == tree(src)


def test_a_blog_held_by_another_holder_runs_once_released(
    make_daemon, blogs: Blogs, other_holder
) -> None:
    src, folder = blogs.add("a")
    daemon, metrics = make_daemon()
    with other_holder("a"):
        daemon.start()
        # The daemon tried (and found the lease busy) more than once.
        wait_until(
            lambda: sample(metrics, "workqueue_work_duration_seconds_count") >= 2,
            5,
            "the daemon's attempts",
        )
        generation = blogs.store.trigger("a")
        time.sleep(0.3)
        record = blogs.get("a")
        assert record.last_pass_at is None and record.pass_generation == 0
        assert files_in(folder) == []
        released = time.monotonic()
    wait_until(
        lambda: blogs.get("a").pass_generation == generation, 5, "the pass after the release"
    )
    assert time.monotonic() - released < 3.0
    assert blogs.get("a").last_pass_result == "ok"
    assert tree(folder) == tree(src)
    assert successes(metrics) == 1


def test_repeated_triggers_collapse_and_a_blog_never_runs_twice_at_once(
    make_daemon, blogs: Blogs, gate: Gate
) -> None:
    blogs.add("a")
    for _ in range(5):  # recorded while no daemon runs: durable
        blogs.store.trigger("a")
    daemon, metrics = make_daemon(workers=4)
    running: list[int] = [0]
    most: list[int] = [0]
    lock = threading.Lock()
    reconcile = daemon.reconciler.reconcile

    def counting(blog_id: str, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return reconcile(blog_id, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    daemon.reconciler.reconcile = counting  # type: ignore[method-assign]
    daemon.start()
    wait_until(lambda: blogs.get("a").pass_generation == 5, 5, "the first pass")
    time.sleep(0.3)
    assert successes(metrics) == 1  # five triggers, one pass

    gate.arm("a")
    blogs.store.trigger("a")
    assert gate.entered.wait(5), "the triggered pass did not start"
    for _ in range(10):  # while the pass runs; polls add the blog every 0.1 s meanwhile
        last = blogs.store.trigger("a")
        time.sleep(0.02)
    gate.open()
    wait_until(lambda: blogs.get("a").pass_generation == last, 5, "the catch-up pass")
    time.sleep(0.5)
    assert successes(metrics) == 3  # the gated pass and exactly one more for ten triggers
    assert blogs.get("a").pass_generation == last == 16
    assert most[0] == 1


def test_a_failing_blog_backs_off_without_blocking_others_and_recovers(
    make_daemon, blogs: Blogs
) -> None:
    src_a, folder_a = blogs.add("a")
    _, folder_b = blogs.add("b")
    base, cap = 0.2, 0.8
    daemon, metrics = make_daemon(workers=1, backoff_base=base, backoff_cap=cap)
    daemon.policy.rng = MaxRandom()  # the backoff's upper bound, every time
    starts: list[int] = []
    reconcile = daemon.reconciler.reconcile

    def timed(blog_id: str, **kwargs: Any) -> Any:
        if blog_id == "a":
            starts.append(time.time_ns())
        return reconcile(blog_id, **kwargs)

    daemon.reconciler.reconcile = timed  # type: ignore[method-assign]
    daemon.start()
    wait_until(
        lambda: all(blogs.get(b).last_pass_result == "ok" for b in "ab"), what="first passes"
    )

    shutil.rmtree(src_a)
    blogs.store.trigger("a")
    wait_until(lambda: blogs.get("a").failures >= 4, 10, "four failed passes of a")
    record = blogs.get("a")
    assert record.last_pass_result == "error" and record.status == "error"
    assert record.status_message is not None and "does not exist" in record.status_message
    assert record.last_pass_at is not None and record.next_pass_at_ns is not None
    delay = (record.next_pass_at_ns - record.last_pass_at.timestamp() * SECOND) / SECOND
    assert delay == pytest.approx(min(cap, base * 2 ** (record.failures - 1)), abs=0.05)
    assert (folder_a / "notes.txt").exists()  # a blog-level error touches nothing

    # Each retry waited out its backoff: 0.2, 0.4, 0.8 (capped), 0.8 ...
    failed = starts[1:]
    gaps = [(b - a) / SECOND for a, b in itertools.pairwise(failed)]
    assert len(gaps) >= 3
    for n, gap in enumerate(gaps, start=1):
        assert gap >= min(cap, base * 2 ** (n - 1)) - 0.02, gaps

    # Meanwhile the other blog runs at once on the only worker.
    generation_b = blogs.store.trigger("b")
    wait_until(lambda: blogs.get("b").pass_generation == generation_b, 2, "b's pass")
    assert blogs.get("b").last_pass_result == "ok" and blogs.get("b").failures == 0
    assert files_in(folder_b)

    shutil.copytree(EXAMPLES, src_a)
    wait_until(lambda: blogs.get("a").failures == 0, cap + 2, "a's recovery")
    record = blogs.get("a")
    assert record.last_pass_result == "ok" and record.status == "ok"
    assert record.next_pass_at_ns is not None
    assert record.next_pass_at_ns > time.time_ns() + 0.85 * RESYNC * SECOND
    assert tree(folder_a) == tree(src_a)
    assert sample(metrics, "controller_runtime_reconcile_total", result="error") >= 4
    assert sample(metrics, "workqueue_retries_total") >= 4


def test_request_stop_ends_an_in_flight_pass_at_a_checkpoint_and_releases_the_lease(
    make_daemon, blogs: Blogs, gate: Gate, other_holder
) -> None:
    src, folder = blogs.add("a")
    daemon, metrics = make_daemon(shutdown_grace=5.0)
    gate.arm("a")
    daemon.start()
    assert gate.entered.wait(5), "the pass did not start"
    assert sample(metrics, "controller_runtime_active_workers") == 1
    with pytest.raises(LeaseBusy), other_holder("a"):
        pass  # the daemon holds the blog now

    started = time.monotonic()
    daemon.request_stop()
    gate.open()  # the pass goes on to its next checkpoint, before its first change
    clean = daemon.shutdown()
    took = time.monotonic() - started

    assert clean
    assert took < daemon.settings.shutdown_grace
    record = blogs.get("a")
    assert record.last_pass_result == "stopped"
    assert record.pass_generation == 0 and record.failures == 0
    assert record.next_pass_at_ns is not None and record.next_pass_at_ns <= time.time_ns()
    assert files_in(folder) == []  # stopped before its first change
    assert sample(metrics, "controller_runtime_active_workers") == 0
    assert successes(metrics) == 0
    with other_holder("a"):  # released: a new acquirer gets it at once
        pass

    # Nothing is lost: the next daemon finishes the blog.
    second, _ = make_daemon()
    second.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", 5, "the next daemon's pass")
    assert tree(folder) == tree(src)


def test_a_pass_outliving_the_grace_cannot_write_after_its_lease_was_released(
    make_daemon, blogs: Blogs, gate: Gate, other_holder
) -> None:
    _, folder = blogs.add("a")
    daemon, _ = make_daemon(shutdown_grace=0.3)
    gate.arm("a")
    daemon.start()
    assert gate.entered.wait(5), "the pass did not start"

    assert not daemon.shutdown()  # the pass is still held in its observation
    with other_holder("a"):  # the lease was released: another process takes the blog
        gate.open()  # the old pass goes on, with no lease
        for thread in daemon._threads:
            thread.join(5)
        assert not any(t.is_alive() for t in daemon._threads)
        # Nothing it did after losing its lease may have reached the store.
        record = blogs.get("a")
        assert record.last_pass_result is None, record.last_pass_result
        assert blogs.store.load_remote("a") == {}
    assert files_in(folder) == []


def test_an_idle_daemon_stops_at_once(make_daemon, blogs: Blogs) -> None:
    blogs.add("a")
    daemon, _ = make_daemon(poll_interval=30.0)
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok")
    started = time.monotonic()
    assert daemon.shutdown()
    assert time.monotonic() - started < 3.0  # not the 30 s poll nor the 5 s grace
    assert not any(t.is_alive() for t in daemon._threads)


def test_a_lease_that_expires_mid_pass_stops_the_pass_and_is_counted_as_lost(
    make_daemon, blogs: Blogs, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    _, folder = blogs.add("a")
    # Renewals never come in time: the lease lapses while the pass is held.
    daemon, metrics = make_daemon(lease_ttl=0.3, lease_renew=30.0)
    gate.arm("a")
    gate.blocked.add("a")  # the retry after the lost lease must not write either
    daemon.start()
    assert gate.entered.wait(5), "the pass did not start"
    time.sleep(0.5)
    gate.open()

    def stopped() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "pass stopped: lease lost"]

    wait_until(stopped, 5, "the pass to stop")
    assert getattr(stopped()[0], "blog", None) == "a"
    assert "lost the lease" in getattr(stopped()[0], "error", "")
    assert sample(metrics, "controller_runtime_reconcile_total", result="error") >= 1
    assert all(t.is_alive() for t in daemon._threads)  # the process goes on
    assert files_in(folder) == []  # stopped at the checkpoint before its first change
    assert sample(metrics, "controller_lease_lost_total") >= 1
    gate.release_all()


# -- watching local sources -----------------------------------------------------------------


def test_a_file_written_into_a_local_source_reaches_the_blog_folder_within_a_second(
    make_daemon, blogs: Blogs
) -> None:
    src, folder = blogs.add("a")
    # A long poll: only the watch can bring the change in time.
    daemon, _ = make_daemon(watch=True, poll_interval=30.0)
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", what="the first pass")
    assert daemon.watcher is not None and "a" in daemon.watcher.watching()

    target = folder / "images" / "new.dat"
    for content in (b"first version\n", b"second, longer version\n"):
        written = time.monotonic()
        (src / "images" / "new.dat").write_bytes(content)
        wait_until(
            lambda c=content: target.exists() and target.read_bytes() == c,
            5,
            "the file in the blog folder",
        )
        took = time.monotonic() - written
        assert took < 1.0, f"the blog folder had the change after {took:.2f} s"


def test_a_watched_edit_re_observes_only_its_paths_and_keeps_the_periodic_walk(
    make_daemon, blogs: Blogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, folder = blogs.add("a")
    daemon, _ = make_daemon(watch=True, poll_interval=30.0)
    daemon.start()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok", what="the first pass")
    wait_until(lambda: "a" in (daemon.watcher.watching() if daemon.watcher else ()), 5, "watch")
    walks: list[str] = []
    listing = LocalSource.listing

    def counted(self: LocalSource, known: Any) -> Any:
        walks.append(str(self.root))
        return listing(self, known)

    monkeypatch.setattr(LocalSource, "listing", counted)
    scheduled = blogs.get("a").next_pass_at_ns

    (src / "pages").mkdir(exist_ok=True)
    (src / "pages" / "new.md").write_text("Title: New\n\nnew post\n")
    (src / "notes.txt").unlink()
    wait_until(
        lambda: (folder / "pages" / "new.md").exists() and not (folder / "notes.txt").exists(),
        5,
        "the edit in the blog folder",
    )
    wait_until(lambda: blogs.get("a").generation == blogs.get("a").pass_generation, 5, "the pass")

    assert walks == [], "a watched edit should not walk the source"
    assert blogs.get("a").next_pass_at_ns == scheduled, "the periodic walk keeps its time"
    assert tree(folder) == tree(src)


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_count_adds_passes_and_workers(make_daemon, blogs: Blogs, gate: Gate) -> None:
    blogs.add("a")
    blogs.add("b")
    daemon, metrics = make_daemon(workers=3)
    assert sample(metrics, "controller_runtime_active_workers") == 0
    gate.arm("a")
    daemon.start()
    assert gate.entered.wait(5)
    wait_until(lambda: blogs.get("b").last_pass_result == "ok")
    wait_until(lambda: sample(metrics, "controller_runtime_active_workers") == 1)
    gate.open()
    wait_until(lambda: blogs.get("a").last_pass_result == "ok")
    wait_until(lambda: sample(metrics, "controller_runtime_active_workers") == 0)
    generation = blogs.store.trigger("b")
    wait_until(lambda: blogs.get("b").pass_generation == generation)

    assert daemon.shutdown()
    assert sample(metrics, "workqueue_adds_total") >= 3
    assert successes(metrics) == 3
    assert sample(metrics, "controller_runtime_reconcile_total", result="error") == 0
    assert sample(metrics, "controller_runtime_reconcile_time_seconds_count") == 3
    assert sample(metrics, "controller_leases_acquired_total") == 3
    assert sample(metrics, "controller_actions_total", action="set") == 16
    assert sample(metrics, "controller_runtime_active_workers") == 0
    assert sample(metrics, "workqueue_depth") == 0
