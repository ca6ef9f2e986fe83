"""Per-blog leases with fencing tokens, on every backend through one fixture.

``lease_env`` runs each test on the SQL backend over SQLite and over PostgreSQL,
and on the Redis backend (with a SQLite store). A second process is simulated
by a second ``Store`` and ``Leases`` on the same URLs: fences are per ``Store``
object, exactly as they are per process.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import truncate_store

from controller.errors import LeaseBackendError, LeaseBusy, LeaseLost
from controller.leases import Lease, LeaseBackend, Leases, open_leases
from controller.leases.redis import RedisLeases
from controller.leases.sql import SqlLeases
from controller.metrics import Metrics
from controller.settings import Settings
from controller.store import BlogRecord, Store

BLOG = "b"
ME = f"{socket.gethostname()}:{os.getpid()}"
DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
SHORT_TTL = 0.15
PAST_SHORT_TTL = 0.25
LONG_TTL_NS = 60 * 10**9


class FakeClock:
    """A monotonic clock the test moves by hand (the lease's local view of time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class LeaseEnv:
    kind: str  # "sql" or "redis"
    store: Store
    redis_url: str | None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def backend(self) -> LeaseBackend:
        """A raw backend connection (as a process would open one)."""
        made: LeaseBackend = (
            RedisLeases(self.redis_url) if self.redis_url else SqlLeases(self.store.url)
        )
        self._closers.append(made.close)
        return made

    def dead_backend(self) -> LeaseBackend:
        """A backend whose server does not answer (closed port)."""
        return RedisLeases(DEAD_REDIS) if self.kind == "redis" else SqlLeases(DEAD_DATABASE)

    def other_store(self) -> Store:
        """The store as another process opens it: its own fences."""
        other = Store(self.store.url, auto_upgrade=True)
        self._closers.append(other.close)
        return other

    def leases(
        self,
        *,
        store: Store | None = None,
        ttl_s: float = 30.0,
        renew_every_s: float = 60.0,
        reclaim_dead: bool = False,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        backend: Callable[[], LeaseBackend] | None = None,
    ) -> Leases:
        made = Leases(
            store or self.store,
            backend or self.backend,
            ttl_s=ttl_s,
            renew_every_s=renew_every_s,
            reclaim_dead=reclaim_dead,
            metrics=metrics or Metrics(),
            clock=clock,
        )
        self._closers.append(made.close)
        return made

    def other_process(self, *, metrics: Metrics | None = None) -> Leases:
        """Leases of a simulated second process (own store object, own connections)."""
        return self.leases(store=self.other_store(), metrics=metrics)

    def flush_redis(self) -> None:
        import redis

        assert self.redis_url is not None
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()

    def close(self) -> None:
        for closer in reversed(self._closers):
            with suppress(Exception):  # teardown must not hide the test's own failure
                closer()


def _add_blog(store: Store, blog_id: str, tmp_path: Path) -> None:
    store.add_blog(
        BlogRecord(
            id=blog_id,
            source_kind="local",
            source_config={"location": str(tmp_path / f"src-{blog_id}")},
            folder=str(tmp_path / f"blog-{blog_id}"),
        )
    )


@pytest.fixture(scope="session")
def empty_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store to copy (migrating one per test costs ~0.1 s)."""
    path = tmp_path_factory.mktemp("template") / "controller.db"
    Store(f"sqlite:///{path}", auto_upgrade=True).close()
    return path


def _open_env(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> LeaseEnv:
    if kind == "sql-postgres":
        url = request.getfixturevalue("postgres_url")
        truncate_store(url)
    else:
        shutil.copyfile(request.getfixturevalue("empty_sqlite"), tmp_path / "controller.db")
        url = f"sqlite:///{tmp_path / 'controller.db'}"
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else None
    store = Store(url, auto_upgrade=True)
    _add_blog(store, BLOG, tmp_path)
    env = LeaseEnv(kind.split("-")[0], store, redis_url)
    env._closers.append(store.close)
    return env


@pytest.fixture(params=["sql-sqlite", "sql-postgres", "redis"])
def lease_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseEnv]:
    """The lease backends: SQL on SQLite and on PostgreSQL, Redis with a SQLite store."""
    env = _open_env(request, tmp_path, request.param)
    yield env
    env.close()


@pytest.fixture
def redis_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseEnv]:
    """The Redis backend only (with a SQLite store)."""
    env = _open_env(request, tmp_path, "redis")
    yield env
    env.close()


def _busy_message(blog_id: str, process: str) -> re.Pattern[str]:
    held_by = re.escape(process)
    return re.compile(
        rf"blog {re.escape(blog_id)} is busy \(held by {held_by} since (?P<since>[^)]+)\)"
    )


def _count(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, f"no sample {name}"
    return value


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    return proc.pid


# -- exclusivity ------------------------------------------------------------------


def test_a_granted_lease_is_exclusive_until_released(lease_env: LeaseEnv) -> None:
    one, two = lease_env.backend(), lease_env.backend()
    first = one.acquire(BLOG, "host:1:a", LONG_TTL_NS, 0)
    assert first is not None and first.holder == "host:1:a" and first.token >= 1
    assert two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0) is None
    holding = two.holding(BLOG)
    assert holding is not None
    assert (holding.holder, holding.token, holding.process) == ("host:1:a", first.token, "host:1")
    assert one.release(first) is True
    assert two.holding(BLOG) is None
    second = two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0)
    assert second is not None and second.token > first.token


def test_racing_acquirers_never_both_win(lease_env: LeaseEnv) -> None:
    backends = [lease_env.backend() for _ in range(6)]
    barrier = threading.Barrier(len(backends))
    grants: list[object] = []
    errors: list[BaseException] = []

    def race(index: int) -> None:
        try:
            barrier.wait()
            grants.append(backends[index].acquire(BLOG, f"host:{index}:x", LONG_TTL_NS, 0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(backends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(grants) == len(backends)
    assert sum(grant is not None for grant in grants) == 1


def test_a_second_holder_gets_lease_busy_naming_this_process(lease_env: LeaseEnv) -> None:
    mine, theirs = lease_env.leases(), lease_env.other_process()
    with mine.hold(BLOG):
        started = time.monotonic()
        with pytest.raises(LeaseBusy) as info, theirs.hold(BLOG, wait=0):
            pytest.fail("two processes held the same blog")
        assert time.monotonic() - started < 2.0  # wait=0 does not wait
    match = _busy_message(BLOG, ME).fullmatch(str(info.value))
    assert match, str(info.value)
    assert info.value.blog_id == BLOG
    since = datetime.fromisoformat(match["since"])
    assert since.tzinfo is not None
    assert abs((datetime.now(UTC) - since).total_seconds()) < 60


def test_lease_busy_comes_only_after_the_wait(lease_env: LeaseEnv) -> None:
    mine, theirs = lease_env.leases(), lease_env.other_process()
    with mine.hold(BLOG):
        started = time.monotonic()
        with pytest.raises(LeaseBusy), theirs.hold(BLOG, wait=0.3):
            pytest.fail("two processes held the same blog")
        assert time.monotonic() - started >= 0.3


def test_waiting_gets_the_lease_once_the_holder_releases(lease_env: LeaseEnv) -> None:
    mine, theirs = lease_env.leases(), lease_env.other_process()
    held, released_at, tokens = threading.Event(), [], []

    def holder() -> None:
        with mine.hold(BLOG) as lease:
            tokens.append(lease.token)
            held.set()
            time.sleep(0.3)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    started = time.monotonic()
    with theirs.hold(BLOG, wait=10) as lease:
        acquired_at = time.monotonic()
        assert lease.token > tokens[0]
    thread.join()
    assert acquired_at >= released_at[0]
    assert acquired_at - started < 5  # it did not sit out the whole wait


# -- tokens -----------------------------------------------------------------------


def test_tokens_strictly_grow_with_every_grant(lease_env: LeaseEnv) -> None:
    leases = lease_env.leases()
    tokens = []
    for _ in range(4):
        with leases.hold(BLOG) as lease:
            tokens.append(lease.token)
    raw = lease_env.backend()
    grant = raw.acquire(BLOG, "host:9:z", LONG_TTL_NS, lease_env.store.fence_token(BLOG))
    assert grant is not None
    tokens.append(grant.token)
    raw.release(grant)
    with lease_env.other_process().hold(BLOG) as lease:
        tokens.append(lease.token)
    assert tokens == sorted(set(tokens)), tokens
    assert lease_env.store.fence_token(BLOG) == tokens[-1]


def test_a_grant_is_above_the_floor_it_is_given(lease_env: LeaseEnv) -> None:
    raw = lease_env.backend()
    grant = raw.acquire(BLOG, "host:1:a", LONG_TTL_NS, 41)
    assert grant is not None and grant.token == 42
    raw.release(grant)
    again = raw.acquire(BLOG, "host:1:b", LONG_TTL_NS, 0)
    assert again is not None and again.token == 43


def test_an_expired_lease_is_taken_over_with_a_higher_token(lease_env: LeaseEnv) -> None:
    one, two = lease_env.backend(), lease_env.backend()
    old = one.acquire(BLOG, "host:1:a", int(SHORT_TTL * 1e9), 0)
    assert old is not None
    assert two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0) is None
    time.sleep(PAST_SHORT_TTL)
    assert two.holding(BLOG) is None  # an expired lease counts as free
    new = two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0)
    assert new is not None and new.token > old.token


def test_a_stale_grant_can_neither_renew_nor_release(lease_env: LeaseEnv) -> None:
    one, two = lease_env.backend(), lease_env.backend()
    old = one.acquire(BLOG, "host:1:a", int(SHORT_TTL * 1e9), 0)
    assert old is not None
    time.sleep(PAST_SHORT_TTL)
    new = two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0)
    assert new is not None
    assert one.renew(old, LONG_TTL_NS) is False
    assert one.release(old) is False
    holding = two.holding(BLOG)
    assert holding is not None and (holding.holder, holding.token) == ("host:2:b", new.token)
    assert one.acquire(BLOG, "host:3:c", LONG_TTL_NS, 0) is None
    assert two.renew(new, LONG_TTL_NS) is True


def test_renew_extends_the_lease_past_its_first_expiry(lease_env: LeaseEnv) -> None:
    one, two = lease_env.backend(), lease_env.backend()
    grant = one.acquire(BLOG, "host:1:a", int(0.5e9), 0)
    assert grant is not None
    time.sleep(0.1)
    assert one.renew(grant, LONG_TTL_NS) is True
    time.sleep(0.5)  # past the first expiry, within the renewed one
    assert two.acquire(BLOG, "host:2:b", LONG_TTL_NS, 0) is None


# -- losing a lease -------------------------------------------------------------------


def test_an_expired_lease_fails_its_own_check_once_taken_over(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases(ttl_s=0.4, renew_every_s=60)
    with mine.hold(BLOG) as old:
        old.check()  # fresh: fine
        time.sleep(0.5)
        with lease_env.other_process().hold(BLOG, wait=0) as new:
            assert new.token > old.token
            assert old.lost is not None and "not renewed" in old.lost
            with pytest.raises(LeaseLost, match="lost the lease") as info:
                old.check()
            assert info.value.blog_id == BLOG
            mine.renew_now()
            assert old.lost is not None
            with pytest.raises(LeaseLost):
                old.check()
            new.check()


def test_renew_now_marks_a_taken_over_lease_lost_and_counts_it(lease_env: LeaseEnv) -> None:
    # A frozen local clock: the holder was paused and does not know time passed.
    clock, metrics = FakeClock(), Metrics()
    mine = lease_env.leases(ttl_s=SHORT_TTL, renew_every_s=60, metrics=metrics, clock=clock)
    with mine.hold(BLOG) as old:
        time.sleep(PAST_SHORT_TTL)
        assert old.lost is None  # its own clock says it is fine
        with lease_env.other_process().hold(BLOG, wait=0):
            mine.renew_now()
            assert old.lost == "another process took it over"
            with pytest.raises(LeaseLost, match="another process took it over"):
                old.check()
            assert _count(metrics, "controller_lease_lost_total") == 1
            mine.renew_now()  # a lost lease is not counted twice
            assert _count(metrics, "controller_lease_lost_total") == 1


def test_the_renewer_thread_keeps_a_lease_past_its_ttl(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases(ttl_s=0.4, renew_every_s=0.05)
    theirs = lease_env.other_process()
    with mine.hold(BLOG) as lease:
        time.sleep(0.9)  # more than twice the TTL
        lease.check()
        assert lease.lost is None
        with pytest.raises(LeaseBusy), theirs.hold(BLOG, wait=0):
            pytest.fail("a renewed lease was taken over")


def test_renewals_failing_past_the_ttl_stop_the_holder_without_crashing(
    lease_env: LeaseEnv,
) -> None:
    clock = FakeClock()
    backends = iter([lease_env.backend(), lease_env.dead_backend()])  # the renewal one is dead
    mine = lease_env.leases(ttl_s=10, renew_every_s=60, clock=clock, backend=lambda: next(backends))
    with mine.hold(BLOG) as lease:
        clock.now += 5
        mine.renew_now()  # the backend does not answer: logged, not raised
        lease.check()
        clock.now += 6
        mine.renew_now()
        with pytest.raises(LeaseLost) as info:
            lease.check()
        assert "not renewed for 11 s" in str(info.value)
        assert "the lease backend did not answer" in str(info.value)


def test_a_lease_lost_to_a_backend_outage_is_counted_once(lease_env: LeaseEnv) -> None:
    clock, metrics = FakeClock(), Metrics()
    backends = iter([lease_env.backend(), lease_env.dead_backend()])
    mine = lease_env.leases(
        ttl_s=10, renew_every_s=60, clock=clock, metrics=metrics, backend=lambda: next(backends)
    )
    with mine.hold(BLOG) as lease:
        clock.now += 11
        mine.renew_now()
        with pytest.raises(LeaseLost):
            lease.check()
        assert _count(metrics, "controller_lease_lost_total") == 1
        mine.renew_now()
    assert _count(metrics, "controller_lease_lost_total") == 1  # not again at release


def test_a_lease_lost_by_its_clock_is_counted_at_release(lease_env: LeaseEnv) -> None:
    clock, metrics = FakeClock(), Metrics()
    mine = lease_env.leases(ttl_s=10, renew_every_s=60, clock=clock, metrics=metrics)
    with mine.hold(BLOG):
        clock.now += 11  # no renewal ran: the block ends after its lease may have passed on
    assert _count(metrics, "controller_lease_lost_total") == 1
    with mine.hold(BLOG):
        pass  # a lease that did not outlive its TTL is not a loss
    assert _count(metrics, "controller_lease_lost_total") == 1


# -- hold(): re-entrancy, threads, release --------------------------------------------


def test_hold_is_reentrant_in_one_thread_and_released_by_the_outer_exit(
    lease_env: LeaseEnv,
) -> None:
    metrics = Metrics()
    mine = lease_env.leases(metrics=metrics)
    raw = lease_env.backend()
    with mine.hold(BLOG) as outer:
        with mine.hold(BLOG, wait=0) as inner:
            assert inner is outer and inner.token == outer.token
        holding = raw.holding(BLOG)
        assert holding is not None and holding.token == outer.token  # inner exit kept it
        assert mine.held() == [outer]
    assert raw.holding(BLOG) is None
    assert mine.held() == []
    assert _count(metrics, "controller_leases_acquired_total") == 1
    with lease_env.other_process().hold(BLOG, wait=0) as later:
        assert later.token > outer.token


def test_hold_releases_when_the_block_raises(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), mine.hold(BLOG), mine.hold(BLOG):
        raise Boom
    assert mine.held() == []
    assert lease_env.backend().holding(BLOG) is None
    with lease_env.other_process().hold(BLOG, wait=0):
        pass


def test_two_threads_of_one_process_are_exclusive(lease_env: LeaseEnv) -> None:
    leases = lease_env.leases()
    held, busy_at_once = threading.Event(), []
    spans: dict[str, tuple[float, float, int]] = {}

    def first() -> None:
        with leases.hold(BLOG) as lease:
            start = time.monotonic()
            held.set()
            time.sleep(0.3)
            spans["first"] = (start, time.monotonic(), lease.token)

    def second() -> None:
        assert held.wait(10)
        try:
            with leases.hold(BLOG, wait=0):
                pass
        except LeaseBusy as exc:
            busy_at_once.append(str(exc))
        with leases.hold(BLOG, wait=10) as lease:
            spans["second"] = (time.monotonic(), time.monotonic(), lease.token)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(busy_at_once) == 1 and _busy_message(BLOG, ME).fullmatch(busy_at_once[0])
    assert spans["second"][0] >= spans["first"][1]
    assert spans["second"][2] > spans["first"][2]


def test_leases_are_per_blog(lease_env: LeaseEnv, tmp_path: Path) -> None:
    _add_blog(lease_env.store, "other", tmp_path)
    mine, theirs = lease_env.leases(), lease_env.other_process()
    with mine.hold(BLOG), theirs.hold("other", wait=0) as lease:
        assert lease.blog_id == "other"


def test_close_releases_every_lease_still_held(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases()
    stack = ExitStack()
    stack.enter_context(mine.hold(BLOG))
    mine.close()
    try:
        with lease_env.other_process().hold(BLOG, wait=0):
            pass
    finally:
        with suppress(KeyError):  # see test_a_block_still_running_at_close_exits_cleanly
            stack.close()


def test_a_block_still_running_at_close_exits_cleanly(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases()
    with mine.hold(BLOG):
        mine.close()


def test_a_lease_released_by_close_fails_its_check(lease_env: LeaseEnv) -> None:
    mine = lease_env.leases()
    stack = ExitStack()
    lease: Lease = stack.enter_context(mine.hold(BLOG))
    mine.close()
    try:
        with pytest.raises(LeaseLost):
            lease.check()
    finally:
        with suppress(KeyError):
            stack.close()


# -- backend specifics ----------------------------------------------------------------


def test_a_dead_backend_is_a_clear_lease_backend_error(lease_env: LeaseEnv) -> None:
    leases = lease_env.leases(backend=lease_env.dead_backend)
    with pytest.raises(LeaseBackendError) as info, leases.hold(BLOG):
        pytest.fail("a dead backend granted a lease")
    assert info.value.blog_id == BLOG
    if lease_env.kind == "redis":
        assert "cannot acquire the lease: Redis at 127.0.0.1:1 does not answer" in str(info.value)
    else:
        assert "cannot acquire the lease in the database" in str(info.value)


def test_redis_losing_its_data_never_reissues_a_fenced_token(redis_env: LeaseEnv) -> None:
    lease_env = redis_env
    leases = lease_env.leases()
    for _ in range(3):
        with leases.hold(BLOG):
            pass
    floor = lease_env.store.fence_token(BLOG)
    assert floor == 3
    lease_env.flush_redis()
    with leases.hold(BLOG) as lease:
        assert lease.token > floor
    assert lease_env.store.fence_token(BLOG) == lease.token


def test_redis_losing_a_held_lease_fences_the_old_holder(redis_env: LeaseEnv) -> None:
    lease_env = redis_env
    metrics = Metrics()
    mine = lease_env.leases(metrics=metrics)
    with mine.hold(BLOG) as old:
        lease_env.flush_redis()
        theirs = lease_env.other_process()
        with theirs.hold(BLOG, wait=0) as new:
            assert new.token > old.token
            with pytest.raises(LeaseLost):
                lease_env.store.set_status(BLOG, "error", "written by the old holder")
            assert lease_env.store.get_blog(BLOG).status_message is None
            mine.renew_now()
            assert old.lost == "another process took it over"
            assert _count(metrics, "controller_lease_lost_total") == 1


def test_a_dead_redis_url_is_a_lease_backend_error_not_a_crash(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", auto_upgrade=True)
    _add_blog(store, BLOG, tmp_path)
    leases = open_leases(store, Settings(data_dir=tmp_path, redis_url=DEAD_REDIS))
    try:
        assert isinstance(leases.backend, RedisLeases)
        with (
            pytest.raises(LeaseBackendError, match=r"Redis at 127\.0\.0\.1:1 does not answer"),
            leases.hold(BLOG),
        ):
            pytest.fail("a dead Redis granted a lease")
        assert leases.held() == []
    finally:
        leases.close()
        store.close()


def test_open_leases_picks_the_backend_and_reclaims_dead_holders_only_on_sqlite(
    lease_env: LeaseEnv, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, redis_url=lease_env.redis_url, lease_ttl=12, lease_renew=4
    )
    leases = open_leases(lease_env.store, settings)
    try:
        assert (leases.ttl_s, leases.renew_every_s) == (12, 4)
        if lease_env.kind == "redis":
            assert isinstance(leases.backend, RedisLeases) and not leases.reclaim_dead
        else:
            assert isinstance(leases.backend, SqlLeases)
            sqlite = lease_env.store.engine.dialect.name == "sqlite"
            assert leases.reclaim_dead is sqlite
    finally:
        leases.close()


def test_a_lease_of_a_dead_process_here_is_reclaimed_at_once(lease_env: LeaseEnv) -> None:
    raw = lease_env.backend()
    dead = raw.acquire(BLOG, f"{socket.gethostname()}:{_dead_pid()}:x", LONG_TTL_NS, 0)
    assert dead is not None and lease_env.store.raise_fence(BLOG, dead.token)
    started = time.monotonic()
    with lease_env.leases(reclaim_dead=True).hold(BLOG, wait=0) as lease:
        assert lease.token > dead.token
        holding = raw.holding(BLOG)
        assert holding is not None and holding.process == ME
    assert time.monotonic() - started < 2


def test_a_dead_holder_is_not_reclaimed_unless_asked(lease_env: LeaseEnv) -> None:
    pid = _dead_pid()
    raw = lease_env.backend()
    assert raw.acquire(BLOG, f"{socket.gethostname()}:{pid}:x", LONG_TTL_NS, 0) is not None
    with (
        pytest.raises(LeaseBusy) as info,
        lease_env.leases(reclaim_dead=False).hold(BLOG, wait=0),
    ):
        pytest.fail("the lease of a dead process was taken without reclaim_dead")
    assert _busy_message(BLOG, f"{socket.gethostname()}:{pid}").fullmatch(str(info.value))


def test_a_lease_of_a_live_process_is_not_reclaimed(lease_env: LeaseEnv) -> None:
    alive = subprocess.Popen(["sleep", "60"])
    try:
        raw = lease_env.backend()
        holder = f"{socket.gethostname()}:{alive.pid}:x"
        assert raw.acquire(BLOG, holder, LONG_TTL_NS, 0) is not None
        with (
            pytest.raises(LeaseBusy),
            lease_env.leases(reclaim_dead=True).hold(BLOG, wait=0.3),
        ):
            pytest.fail("the lease of a live process was taken")
        holding = raw.holding(BLOG)
        assert holding is not None and holding.holder == holder
    finally:
        alive.kill()
        alive.wait()


def test_a_dead_pid_on_another_host_is_not_reclaimed(lease_env: LeaseEnv) -> None:
    raw = lease_env.backend()
    holder = f"not-{socket.gethostname()}:{_dead_pid()}:x"
    assert raw.acquire(BLOG, holder, LONG_TTL_NS, 0) is not None
    with pytest.raises(LeaseBusy), lease_env.leases(reclaim_dead=True).hold(BLOG, wait=0):
        pytest.fail("the lease of another host's process was taken")


# -- metrics ------------------------------------------------------------------------


def test_acquired_leases_are_counted_per_grant(lease_env: LeaseEnv) -> None:
    metrics, theirs_metrics = Metrics(), Metrics()
    mine = lease_env.leases(metrics=metrics)
    theirs = lease_env.other_process(metrics=theirs_metrics)
    for _ in range(2):
        with mine.hold(BLOG), mine.hold(BLOG):
            pass
    with theirs.hold(BLOG):
        pass
    with mine.hold(BLOG), pytest.raises(LeaseBusy), theirs.hold(BLOG, wait=0):
        pass
    assert _count(metrics, "controller_leases_acquired_total") == 3
    assert _count(theirs_metrics, "controller_leases_acquired_total") == 1
    assert _count(metrics, "controller_lease_lost_total") == 0
