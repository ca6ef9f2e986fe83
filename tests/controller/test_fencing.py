"""The store's fence: writes under a stale lease token change nothing, on every backend.

A process registers its lease token with ``Store.fence``; every blog write then
checks it against the highest token the blog has seen. The end-to-end tests
play two processes (two ``Store`` objects and two ``Leases`` on one URL): A's
lease expires, B takes the blog over, and whatever A still tries is refused.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import tree

from controller.errors import LeaseLost, UnknownBlog
from controller.leases import Leases
from controller.leases.sql import SqlLeases
from controller.metrics import Metrics
from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from controller.store.sql import now_utc
from reconcilers.core.tree import Kind, Node
from reconcilers.outcomes import Installed, LocalStat
from reconcilers.sources.base import Observation

BLOG = "b"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"
NEW_POST = "Title: Written while A was paused\n\nB's post.\n"


def _add_blog(store: Store, blog_id: str, root: Path) -> tuple[Path, Path]:
    src, dst = root / f"src-{blog_id}", root / f"blog-{blog_id}"
    store.add_blog(
        BlogRecord(
            id=blog_id, source_kind="local", source_config={"location": str(src)}, folder=str(dst)
        )
    )
    return src, dst


def _snapshot(store: Store, blog_id: str) -> dict[str, Any]:
    """Everything the store knows about a blog (the fence token included)."""
    return {
        "blog": store.get_blog(blog_id),
        "fence": store.fence_token(blog_id),
        "remote": store.load_remote(blog_id),
        "synced": store.load_synced(blog_id),
        "entries": store.entries(blog_id),
        "history": store.history(blog_id, limit=10_000),
    }


def _without_fence(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != "fence"}


def _file(path: str, content: bytes) -> Node:
    return Node(path, Kind.FILE, size=len(content), mtime_ns=1, content_hash=f"hash-{path}")


def _installed(path: str) -> Installed:
    return Installed(_file(path, b"png"), LocalStat(inode=7, size=3, mtime_ns=1), None)


# -- every fenced write -------------------------------------------------------------

WRITES: dict[str, Callable[[Store], object]] = {
    "set_status": lambda s: s.set_status(BLOG, "syncing", "a message"),
    "set_dirty": lambda s: s.set_dirty(BLOG, True),
    "mark_settled": lambda s: s.mark_settled(BLOG),
    "record_pass": lambda s: s.record_pass(
        BLOG,
        at=now_utc(),
        seconds=1.5,
        result="ok",
        message=None,
        history_limit=100,
        generation=0,
        next_pass_at_ns=123,
        failures=0,
        full=True,
    ),
    "save_observation": lambda s: s.save_observation(
        BLOG, Observation(upserts=(_file("new.png", b"new"),), deletes=(), cursor="c2")
    ),
    "record": lambda s: s.record(BLOG, [_installed("new.png")], time.time_ns()),
    "repair_synced": lambda s: s.repair_synced(BLOG, forget=["a.png"], adopt=[]),
    "log": lambda s: s.log(BLOG, "a line"),
}


@pytest.fixture
def blog(store: Store, tmp_path: Path) -> Store:
    """Blog ``b`` with one observed and installed file (``a.png``), written unfenced."""
    _add_blog(store, BLOG, tmp_path)
    store.save_observation(
        BLOG, Observation(upserts=(_file("a.png", b"png"),), deletes=(), cursor="c1")
    )
    store.record(BLOG, [_installed("a.png")], time.time_ns())
    return store


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_under_a_stale_token_raises_lease_lost_and_changes_nothing(
    blog: Store, write: str
) -> None:
    assert blog.raise_fence(BLOG, 1) and blog.raise_fence(BLOG, 2)
    blog.fence(BLOG, 1)
    before = _snapshot(blog, BLOG)
    with pytest.raises(LeaseLost, match="newer lease holder than token 1") as info:
        WRITES[write](blog)
    assert info.value.blog_id == BLOG
    assert _snapshot(blog, BLOG) == before


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_with_the_current_token_succeeds(blog: Store, write: str) -> None:
    assert blog.raise_fence(BLOG, 2)
    blog.fence(BLOG, 2)
    before = _snapshot(blog, BLOG)
    WRITES[write](blog)
    after = _snapshot(blog, BLOG)
    assert _without_fence(after) != _without_fence(before)  # the write did something
    assert after["fence"] == 2


def test_a_write_records_its_token_as_the_newest(blog: Store) -> None:
    assert blog.fence_token(BLOG) == 0
    blog.fence(BLOG, 7)
    blog.set_status(BLOG, "syncing", "under token 7")
    assert blog.fence_token(BLOG) == 7
    assert blog.get_blog(BLOG).status_message == "under token 7"
    other = Store(blog.url, auto_upgrade=True)
    try:
        other.fence(BLOG, 6)
        with pytest.raises(LeaseLost):
            other.log(BLOG, "under token 6")
        assert [h.result for h in blog.history(BLOG) if h.action == "log"] == []
    finally:
        other.close()


def test_raise_fence_refuses_equal_or_lower_tokens(blog: Store) -> None:
    assert blog.raise_fence(BLOG, 5) is True
    assert blog.raise_fence(BLOG, 5) is False
    assert blog.raise_fence(BLOG, 4) is False
    assert blog.fence_token(BLOG) == 5
    assert blog.raise_fence(BLOG, 6) is True
    assert blog.fence_token(BLOG) == 6


def test_fences_are_per_blog_and_end_with_unfence(blog: Store, tmp_path: Path) -> None:
    _add_blog(blog, "other", tmp_path)
    assert blog.raise_fence(BLOG, 9)
    blog.fence(BLOG, 3)
    blog.set_status("other", "syncing", "not fenced")  # another blog: not concerned
    assert blog.get_blog("other").status_message == "not fenced"
    with pytest.raises(LeaseLost):
        blog.set_status(BLOG, "syncing", "stale")
    blog.unfence(BLOG, 3)
    blog.set_status(BLOG, "syncing", "no lease claimed")  # unfenced writes are not checked
    assert blog.get_blog(BLOG).status_message == "no lease claimed"
    assert blog.fence_token(BLOG) == 9


# -- triggers and due blogs ------------------------------------------------------------


def test_trigger_is_never_fenced_and_bumps_the_generation_by_one(blog: Store) -> None:
    assert blog.raise_fence(BLOG, 2)
    blog.fence(BLOG, 1)  # a stale holder may still ask for a pass
    assert [blog.trigger(BLOG) for _ in range(3)] == [1, 2, 3]
    record = blog.get_blog(BLOG)
    assert (record.generation, record.pass_generation) == (3, 0)
    assert blog.fence_token(BLOG) == 2
    with pytest.raises(UnknownBlog):
        blog.trigger("nope")


def _passed(store: Store, blog_id: str, *, generation: int, next_pass_at_ns: int | None) -> None:
    store.record_pass(
        blog_id,
        at=now_utc(),
        seconds=0.1,
        result="ok",
        message=None,
        history_limit=100,
        generation=generation,
        next_pass_at_ns=next_pass_at_ns,
    )


def test_due_blogs_are_triggered_scheduled_past_due_or_never_scheduled(
    store: Store, tmp_path: Path
) -> None:
    now = time.time_ns()
    hour = 3600 * 10**9
    for blog_id in ("fresh", "later", "past", "edge", "triggered", "mid-pass"):
        _add_blog(store, blog_id, tmp_path)
    _passed(store, "later", generation=0, next_pass_at_ns=now + hour)
    _passed(store, "past", generation=0, next_pass_at_ns=now - 1)
    _passed(store, "edge", generation=0, next_pass_at_ns=now)
    _passed(store, "triggered", generation=0, next_pass_at_ns=now + hour)
    store.trigger("triggered")
    # A pass started from generation 1; a trigger arrived while it ran.
    store.trigger("mid-pass")
    store.trigger("mid-pass")
    _passed(store, "mid-pass", generation=1, next_pass_at_ns=now + hour)

    def due() -> set[str]:
        return {b.id for b in store.due_blogs(now)}

    assert due() == {"fresh", "past", "edge", "triggered", "mid-pass"}
    _passed(store, "triggered", generation=1, next_pass_at_ns=now + hour)
    _passed(store, "mid-pass", generation=2, next_pass_at_ns=now + hour)
    _passed(store, "fresh", generation=0, next_pass_at_ns=now + hour)
    assert due() == {"past", "edge"}
    store.trigger("later")
    assert due() == {"past", "edge", "later"}


# -- end to end: two processes, one blog ------------------------------------------------


class FrozenClock:
    """The paused process's view of time: it does not move."""

    def __call__(self) -> float:
        return 1000.0


@dataclass
class TwoProcesses:
    frozen: bool
    settings: Settings
    src: Path
    dst: Path
    a_store: Store
    a_leases: Leases
    a: Reconciler
    b_store: Store
    b_leases: Leases


def _holder_token(url: str) -> int | None:
    backend = SqlLeases(url)
    try:
        holding = backend.holding(BLOG)
        return None if holding is None else holding.token
    finally:
        backend.close()


@pytest.fixture(params=["clock-runs", "clock-frozen"])
def two_processes(
    request: pytest.FixtureRequest, store: Store, tmp_path: Path
) -> Iterator[TwoProcesses]:
    """The sample blog is reconciled; A's lease has a 0.3 s TTL and is never renewed.

    ``clock-frozen``: A's own clock stands still, as if A was paused right after
    checking it, so A's checkpoints pass and only the store's fence can stop it.
    """
    src, dst = _add_blog(store, BLOG, tmp_path)
    shutil.copytree(EXAMPLES, src)
    settings = Settings(data_dir=tmp_path)
    frozen = request.param == "clock-frozen"
    a_leases = Leases(
        store,
        lambda: SqlLeases(store.url),
        ttl_s=0.3,
        renew_every_s=60,
        clock=FrozenClock() if frozen else time.monotonic,
        metrics=Metrics(),
    )
    a = Reconciler(store, settings, a_leases, metrics=Metrics())
    setup_leases = Leases(store, lambda: SqlLeases(store.url), metrics=Metrics())  # 30 s TTL
    Reconciler(store, settings, setup_leases, metrics=Metrics()).reconcile(BLOG)
    setup_leases.close()
    b_store = Store(store.url, auto_upgrade=True)
    b_leases = Leases(b_store, lambda: SqlLeases(store.url), metrics=Metrics())
    yield TwoProcesses(frozen, settings, src, dst, store, a_leases, a, b_store, b_leases)
    b_leases.close()
    b_store.close()
    a_leases.close()


def test_a_paused_holder_changes_nothing_after_its_lease_passes_on(
    two_processes: TwoProcesses,
) -> None:
    p = two_processes
    with ExitStack() as b_holds, ExitStack() as a_holds:
        a_lease = a_holds.enter_context(p.a_leases.hold(BLOG))
        time.sleep(0.4)  # A is paused past its TTL
        b_lease = b_holds.enter_context(p.b_leases.hold(BLOG, wait=0))
        assert b_lease.token > a_lease.token
        (p.src / "while-a-slept.md").write_text(NEW_POST)
        store_before, folder_before = _snapshot(p.a_store, BLOG), tree(p.dst)

        # A wakes up and carries on with a pass: its clock stops it at the first
        # checkpoint, or, when its clock did not see the pause, the fence does.
        expected = "newer lease holder than token" if p.frozen else "lost the lease"
        with pytest.raises(LeaseLost, match=expected) as info:
            p.a.reconcile(BLOG)
        assert info.value.blog_id == BLOG
        for write in ("set_status", "record", "log", "save_observation"):
            with pytest.raises(LeaseLost):
                WRITES[write](p.a_store)

        assert _snapshot(p.a_store, BLOG) == store_before
        assert tree(p.dst) == folder_before
        a_holds.close()  # A gives up: its release must not free B's lease
        assert _holder_token(p.a_store.url) == b_lease.token
    assert _holder_token(p.a_store.url) is None
    # What A could not do, B's next pass does.
    b = Reconciler(p.b_store, p.settings, p.b_leases, metrics=Metrics())
    report = b.reconcile(BLOG, wait=0)
    assert report.actions["set"] == 1
    assert (p.dst / "while-a-slept.md").read_text() == NEW_POST
    assert "while-a-slept.md" in {e.path for e in p.b_store.entries(BLOG) if not e.deleted}


# -- two threads of one process ----------------------------------------------------------


def _stale_thread_then_new_holder(store: Store, tmp_path: Path) -> dict[str, object]:
    """Thread A's lease expires unnoticed (frozen clock, no renewal); thread B takes it over.

    Then A writes (stale), A exits, a third process announces a newer token, and B
    writes (now stale too). Returns what happened to each write.
    """
    _add_blog(store, BLOG, tmp_path)
    leases = Leases(
        store,
        lambda: SqlLeases(store.url),
        ttl_s=0.2,
        renew_every_s=60,
        clock=FrozenClock(),
        metrics=Metrics(),
    )
    a_held, b_held, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def write(key: str, act: Callable[[], object]) -> None:
        try:
            act()
            seen[key] = "accepted"
        except LeaseLost:
            seen[key] = "refused"

    def thread_a() -> None:
        with leases.hold(BLOG) as lease:
            seen["a"] = lease.token
            a_held.set()
            assert b_held.wait(10)
            write("a_write", lambda: store.set_status(BLOG, "syncing", "from stale thread A"))
        a_done.set()

    def thread_b() -> None:
        assert a_held.wait(10)
        time.sleep(0.3)
        with leases.hold(BLOG, wait=5) as lease:
            seen["b"] = lease.token
            b_held.set()
            assert a_done.wait(10)
            third = Store(store.url, auto_upgrade=True)
            try:
                assert third.raise_fence(BLOG, lease.token + 1)
            finally:
                third.close()
            write("b_write", lambda: store.log(BLOG, "from thread B, stale now"))

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        leases.close()
    a_token, b_token = seen.get("a"), seen.get("b")
    if not (isinstance(a_token, int) and isinstance(b_token, int) and b_token > a_token):
        raise RuntimeError(f"the takeover did not happen as staged: {seen}")
    if "a_write" not in seen or "b_write" not in seen:
        raise RuntimeError(f"a thread did not get to its write: {seen}")
    return seen


def test_a_stale_thread_is_fenced_when_the_new_holder_is_in_the_same_process(
    store: Store, tmp_path: Path
) -> None:
    seen = _stale_thread_then_new_holder(store, tmp_path)
    assert seen["a_write"] == "refused"
    assert store.get_blog(BLOG).status_message is None


def test_a_stale_release_does_not_unfence_the_current_holder(store: Store, tmp_path: Path) -> None:
    seen = _stale_thread_then_new_holder(store, tmp_path)
    assert seen["b_write"] == "refused"
    assert [h for h in store.history(BLOG) if h.action == "log"] == []
