"""Multi-process safety on PostgreSQL + Redis (issue 4, item 7).

* ``test_four_replicas_converge_200_changing_blogs_without_overlapping_leases``:
  four real ``controller run`` processes share one store and one Redis while
  the test keeps changing the sources of 200 blogs; every blog converges, the
  lease intervals the processes log never overlap per blog, tokens grow in
  time order, and the work spreads over the replicas.
* ``test_a_holder_frozen_past_its_ttl_gets_lease_lost_and_changes_nothing``:
  a ``controller reconcile`` frozen with SIGSTOP past its 1 s lease, a second
  process takes the blog over and reconciles it; the frozen one, resumed,
  fails with LeaseLost and leaves the store and the folder as the second left
  them (frozen while observing, and frozen mid-install).
* ``test_a_holder_frozen_mid_install_writes_nothing_into_the_folder_after_the_takeover``:
  the resumed holder checks its lease before staging each file, so it creates
  nothing in the folder once it wakes up.
* ``test_a_stale_holder_in_process_is_fenced_on_every_write``: the same
  guarantee in one Python process (fast), on the Redis and the SQL backend.

The sources are changed with a seeded RNG (the seed is printed; set
``REPLICAS_SEED`` to replay its sources and sequence of changes; how far the
sequence gets in the churn period depends on the machine's speed).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select, text
from support import controller_env, tree

from controller.errors import LeaseLost
from controller.leases import open_leases
from controller.settings import Settings
from controller.store import BlogRecord, Store
from controller.store.models import BLOGS, ENTRIES, HISTORY, REMOTE, SYNCED
from controller.triggers import Triggers
from reconcilers.core.tree import TEMP_PREFIX
from reconcilers.sources.base import Observation

CONTROLLER = Path(sys.executable).with_name("controller")
if not CONTROLLER.exists():  # a virtualenv without the script beside its python
    CONTROLLER = Path(shutil.which("controller") or "controller")

SEED = int(os.environ.get("REPLICAS_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)

BLOG_COUNT = 200
REPLICAS = 4
CHURN_SECONDS = 12.0
CONVERGE_TIMEOUT = 90.0
STOP_TIMEOUT = 25.0
#: The "lease released" line is written just *after* the release, and the
#: next holder's "lease acquired" just after its grant, so the logged
#: intervals of two consecutive holders may overlap by the time a process
#: takes to write one log line (GIL hand-over, scheduling on a busy machine).
#: The strict check uses the inner interval (acquired -> reconciled) instead.
LOG_SLACK_S = 0.1
#: Files the frozen holder installs per batch (the setting's default).
INSTALL_BATCH = 1000


# -- processes and their logs --------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    stderr: Path

    def lines(self) -> list[dict[str, Any]]:
        return read_log(self.stderr)

    def wait_for(self, message: str, timeout: float, poll: float = 0.005) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.get("message") == message:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(poll)
        raise AssertionError(
            f"{self.name} never logged {message!r} (exit {self.popen.poll()}):\n{self.tail()}"
        )

    def tail(self, n: int = 30) -> str:
        text_ = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return "\n".join(text_.splitlines()[-n:])


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    stderr = logs / f"{name}.stderr"
    with open(stderr, "wb") as err, open(logs / f"{name}.stdout", "wb") as out:
        popen = subprocess.Popen(
            [str(CONTROLLER), "--log-format", "json", "-v", *args],
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    return Proc(name, popen, stderr)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log (other lines, e.g. "controller running", are skipped)."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:  # a line still being written
                continue
    return lines


def stop_all(procs: list[Proc]) -> None:
    """Kill whatever is still running (test teardown)."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
    for proc in procs:
        proc.popen.wait(timeout=10)


# -- the store --------------------------------------------------------------------------


def _empty_store(url: str) -> Store:
    """The worker's schema, migrated and emptied (other tests may have used it)."""
    store = Store(url, auto_upgrade=True)
    meta = MetaData()
    meta.reflect(store.engine)
    names = ", ".join(f'"{t}"' for t in meta.tables if t != "alembic_version")
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    return store


def store_rows(store: Store, blog_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the blog in every table the controller writes blog data to."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in (BLOGS, REMOTE, SYNCED, ENTRIES, HISTORY):
            key = table.c.id if table is BLOGS else table.c.blog_id
            rows = conn.execute(select(table).where(key == blog_id))
            snapshot[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return snapshot


# -- sources ------------------------------------------------------------------------------


def stamps(root: Path) -> dict[str, tuple[int, int, int]]:
    """Relative path -> (inode, size, mtime_ns): what a rewrite would change."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def _post(rng: random.Random, n: int) -> bytes:
    title = f"Post {n} {rng.randrange(10**6)}"
    body = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "kyoto"]) for _ in range(30))
    return f"Title: {title}\nTags: t{n % 3}, churn\n\n# {title}\n\n{body}\n".encode()


def _data(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randrange(1, 3000))


class Source:
    """A small local source the test changes: files replaced atomically (new inode)."""

    DIRS = ("", "posts", "posts/2024", "images", "notes")

    def __init__(self, root: Path, staging: Path, rng: random.Random) -> None:
        self.root = root
        self.staging = staging
        self.rng = rng
        self.counter = 0
        root.mkdir(parents=True)
        for _ in range(rng.randrange(5, 11)):
            self.add()

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def _write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` atomically: a reader never sees a partial file."""
        self.counter += 1
        temp = self.staging / f"{self.root.name}-{self.counter}"
        temp.write_bytes(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, path)

    def _content(self, name: str) -> bytes:
        return _post(self.rng, self.counter) if name.endswith(".md") else _data(self.rng)

    def add(self) -> None:
        self.counter += 1
        folder = self.root / self.rng.choice(self.DIRS)
        name = f"f{self.counter}" + self.rng.choice([".md", ".md", ".png", ".bin"])
        self._write(folder / name, self._content(name))

    def edit(self) -> None:
        path = self.rng.choice(self.files())
        self._write(path, self._content(path.name))

    def delete(self) -> None:
        files = self.files()
        if len(files) > 2:
            self.rng.choice(files).unlink()
            self._prune()

    def rename(self) -> None:
        path = self.rng.choice(self.files())
        self.counter += 1
        folder = self.root / self.rng.choice(self.DIRS)
        folder.mkdir(parents=True, exist_ok=True)
        os.rename(path, folder / f"r{self.counter}{path.suffix}")
        self._prune()

    def rename_dir(self) -> None:
        dirs = [p for p in self.root.iterdir() if p.is_dir()]
        if dirs:
            self.counter += 1
            victim = self.rng.choice(dirs)
            os.rename(victim, self.root / f"{victim.name.split('-')[0]}-{self.counter}")

    def _prune(self) -> None:
        """Now and then leave an empty directory behind, otherwise remove it."""
        for directory in sorted(self.root.rglob("*"), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()) and self.rng.random() < 0.7:
                directory.rmdir()

    def change(self) -> None:
        op = self.rng.choices(
            [self.add, self.edit, self.delete, self.rename, self.rename_dir],
            weights=[3, 4, 2, 3, 1],
        )[0]
        op()


# -- lease intervals from the logs ---------------------------------------------------------


@dataclass
class Interval:
    blog: str
    token: int
    process: int
    acquired: float
    released: float
    #: The last line of the pass inside the lease ("reconciled"): acquired ->
    #: worked lies strictly inside the real holding, whatever the log delays.
    worked: float


def lease_intervals(logs: list[list[dict[str, Any]]]) -> dict[str, list[Interval]]:
    """Per blog, every lease a process logged, paired by (blog, token), by acquisition time."""
    acquired: dict[tuple[str, int], dict[str, Any]] = {}
    released: dict[tuple[str, int], dict[str, Any]] = {}
    worked: dict[tuple[str, int], float] = {}
    open_by_thread: dict[tuple[int, str, str], tuple[str, int]] = {}
    for lines in logs:
        for line in lines:
            message, blog = line["message"], line.get("blog", "")
            if message == "lease acquired":
                key = (blog, line["token"])
                assert key not in acquired, f"token granted twice: {line} and {acquired[key]}"
                acquired[key] = line
                open_by_thread[(line["process"], line["thread"], blog)] = key
            elif message == "lease released":
                key = (blog, line["token"])
                assert key not in released, f"released twice: {line}"
                released[key] = line
            elif message == "reconciled":
                held = open_by_thread.get((line["process"], line["thread"], blog))
                if held is not None and held not in released:
                    worked[held] = line["ts"]
    missing = set(acquired) - set(released)
    assert not missing, f"leases acquired but never released: {sorted(missing)[:10]}"
    assert set(released) <= set(acquired), "a lease released that was never acquired"
    intervals: dict[str, list[Interval]] = defaultdict(list)
    for key, start in acquired.items():
        end = released[key]
        assert end["process"] == start["process"], f"released by another process: {start} {end}"
        assert end["ts"] >= start["ts"]
        intervals[key[0]].append(
            Interval(
                key[0],
                key[1],
                start["process"],
                start["ts"],
                end["ts"],
                worked.get(key, start["ts"]),
            )
        )
    for items in intervals.values():
        items.sort(key=lambda i: (i.acquired, i.token))
    return intervals


def check_intervals(intervals: dict[str, list[Interval]]) -> tuple[int, float]:
    """Asserts no overlap per blog; returns (leases, largest logged overlap in s)."""
    count, worst = 0, 0.0
    for blog, items in intervals.items():
        count += len(items)
        for before, after in itertools.pairwise(items):
            assert after.token > before.token, f"{blog}: tokens out of time order: {before} {after}"
            # Strict: what each holder did under its lease never interleaves.
            assert after.acquired > before.worked, (
                f"{blog}: two holders at once: {before} and {after}"
            )
            overlap = before.released - after.acquired
            worst = max(worst, overlap)
            assert overlap < LOG_SLACK_S, f"{blog}: lease intervals overlap: {before} {after}"
    return count, worst


# -- test 1: four replicas, 200 changing blogs ----------------------------------------------


def _errors(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Error lines of one process, and any line saying a lease was lost.

    One kind is left out: watchdog may log "InotifyEmitter.queue_events()
    called when the thread is inactive" while the observer stops (many watches
    torn down at once): a library's shutdown noise, ignored once the daemon is
    stopping.
    """
    stopping = min(
        (line["ts"] for line in lines if line["message"].startswith("stopping")),
        default=float("inf"),
    )
    bad = []
    for line in lines:
        message = line["message"]
        if line["logger"].startswith("watchdog") and line["ts"] >= stopping:
            continue
        if line["level"] in {"error", "critical"} or message in {
            "lease lost",
            "pass crashed",
            "lease not released (it will expire)",
        }:
            bad.append(line)
    return bad


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    stop_all(started)


def _unconverged(store: Store, sources: dict[str, Path]) -> dict[str, str]:
    """Blogs not yet converged, with why."""
    why: dict[str, str] = {}
    for blog in store.list_blogs():
        if blog.generation != blog.pass_generation or blog.last_pass_result != "ok":
            why[blog.id] = (
                f"generation {blog.generation}, pass_generation {blog.pass_generation}, "
                f"last result {blog.last_pass_result} ({blog.status_message})"
            )
            continue
        try:
            same = tree(Path(blog.folder)) == tree(sources[blog.id])
        except OSError as exc:  # a file moved while we read
            why[blog.id] = f"folder changing: {exc}"
            continue
        if not same:
            why[blog.id] = "folder differs from its source"
    return why


@pytest.mark.slow
@pytest.mark.postgres
def test_four_replicas_converge_200_changing_blogs_without_overlapping_leases(
    postgres_url: str, redis_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    print(f"REPLICAS_SEED={SEED}")
    rng = random.Random(SEED)
    began = time.monotonic()
    store = _empty_store(postgres_url)
    settings = Settings(database_url=postgres_url, redis_url=redis_url)
    triggers = Triggers(store, settings)
    staging = tmp_path / "staging"
    staging.mkdir()
    sources: dict[str, Source] = {}
    for n in range(BLOG_COUNT):
        blog_id = f"b{n:03d}"
        sources[blog_id] = Source(tmp_path / "src" / blog_id, staging, rng)
        store.add_blog(
            BlogRecord(
                id=blog_id,
                source_kind="local",
                source_config={"location": str(sources[blog_id].root)},
                folder=str(tmp_path / "blogs" / blog_id),
            )
        )
    env = controller_env(
        tmp_path,
        CONTROLLER_BLOGS_DIR=str(tmp_path / "blogs"),
        CONTROLLER_DATABASE_URL=postgres_url,
        CONTROLLER_REDIS_URL=redis_url,
    )
    args = ["run", "--workers", "2", "--poll", "0.5", "--resync", "3600"]
    for n in range(REPLICAS):
        extra = ["--no-watch"] if n % 2 else []  # two watch their sources, two only poll
        procs.append(start(f"replica-{n}", args + extra, env, tmp_path / "logs"))
    for proc in procs:
        proc.wait_for("daemon started", timeout=30, poll=0.05)
    setup = time.monotonic() - began

    # Churn: change a few random sources, trigger them (durable + pub/sub), repeat.
    churn_end = time.monotonic() + CHURN_SECONDS
    changes = fired = 0
    blog_ids = sorted(sources)
    while time.monotonic() < churn_end:
        batch = rng.sample(blog_ids, 6)
        for blog_id in batch:
            for _ in range(rng.randrange(1, 4)):
                sources[blog_id].change()
                changes += 1
        for blog_id in batch:
            triggers.fire(blog_id)
            fired += 1
        time.sleep(rng.uniform(0.02, 0.12))
        for proc in procs:
            assert proc.popen.poll() is None, f"{proc.name} died:\n{proc.tail()}"
    for blog_id in blog_ids:
        triggers.fire(blog_id)
    churned = time.monotonic()

    roots = {blog_id: source.root for blog_id, source in sources.items()}
    deadline = churned + CONVERGE_TIMEOUT
    while (pending := _unconverged(store, roots)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not pending, (
        f"{len(pending)} blogs did not converge within {CONVERGE_TIMEOUT} s "
        f"(seed {SEED}): {dict(list(pending.items())[:10])}"
    )
    converged = time.monotonic()

    for proc in procs:
        proc.popen.send_signal(signal.SIGTERM)
    stop_deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs:
        try:
            code = proc.popen.wait(timeout=max(0.1, stop_deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{proc.name} did not exit within {STOP_TIMEOUT} s of SIGTERM")
        assert code == 0, f"{proc.name} exited {code}:\n{proc.tail()}"
        assert "controller stopped\n" in proc.stderr.read_text(), proc.tail()
    stopped = time.monotonic()

    logs = [proc.lines() for proc in procs]
    everything = [line for lines in logs for line in lines]
    bad = [line for lines in logs for line in _errors(lines)]
    assert not bad, f"errors in the replicas' logs (seed {SEED}): {bad[:5]}"

    intervals = lease_intervals(logs)
    leases, worst_overlap = check_intervals(intervals)

    reconciled = [line for line in everything if line["message"] == "reconciled"]
    assert {line["blog"] for line in reconciled if line["result"] == "ok"} == set(blog_ids)
    assert set(intervals) == set(blog_ids)
    by_process = Counter(line["process"] for line in reconciled)
    assert len(by_process) >= 2, f"one process did all the work: {by_process}"

    # The store agrees with the logs (fenced at the last grant) and with the sources:
    # every file synced, exactly one live entry per post.
    for blog in store.list_blogs():
        assert store.fence_token(blog.id) == intervals[blog.id][-1].token
        source = sources[blog.id].root
        synced = store.load_synced(blog.id)
        files = {p for p, row in synced.items() if row.node.kind.value == "file"}
        assert files == {p.relative_to(source).as_posix() for p in sources[blog.id].files()}
        assert {synced[p].state.value for p in files} == {"synced"}, blog.id
        live = [e.path for e in store.entries(blog.id) if not e.deleted]
        assert sorted(live) == sorted(p for p in files if p.endswith(".md")), blog.id

    print(
        f"seed {SEED}: setup {setup:.1f} s, churn {CHURN_SECONDS:.0f} s ({changes} changes, "
        f"{fired} triggers), converged {converged - churned:.1f} s after, "
        f"stopped in {stopped - converged:.1f} s, total {stopped - began:.1f} s; "
        f"{len(reconciled)} passes, {leases} leases, passes per process "
        f"{sorted(by_process.values())}, largest logged hand-over overlap "
        f"{worst_overlap * 1000:.1f} ms"
    )
    triggers.close()
    store.close()


# -- test 2: a holder frozen past its TTL ----------------------------------------------------


def _big_source(root: Path, files: int) -> None:
    rng = random.Random(7)
    for n in range(files):
        folder = root / f"d{n % 30:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if n % 10 == 0:
            (folder / f"post-{n}.md").write_bytes(_post(rng, n))
        else:
            (folder / f"file-{n}.bin").write_bytes(rng.randbytes(200))


def _folder_counts(folder: Path) -> tuple[int, int]:
    """(installed files, temporaries) in a blog folder being written."""
    files = temps = 0
    for _, _, names in os.walk(folder):
        for name in names:
            if name.startswith(TEMP_PREFIX):
                temps += 1
            else:
                files += 1
    return files, temps


def _freeze_when_installing(proc: Proc, folder: Path, timeout: float = 60) -> None:
    """SIGSTOP ``proc`` after its first batch is installed, while it stages the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.popen.poll() is None:
        files, temps = _folder_counts(folder)
        if files >= INSTALL_BATCH and temps > 0:
            proc.popen.send_signal(signal.SIGSTOP)
            return
        time.sleep(0.002)
    raise AssertionError(f"{proc.name} was never caught mid-install:\n{proc.tail()}")


def _split_stamps(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """stamps() of the files, and of the directories, of ``root``."""
    everything = stamps(root)
    dirs = {p for p in everything if (root / p).is_dir()}
    return (
        {p: s for p, s in everything.items() if p not in dirs},
        {p: s for p, s in everything.items() if p in dirs},
    )


@dataclass
class FrozenRun:
    """What a frozen-then-resumed holder and its successor did to one blog."""

    freeze_at: str
    at_freeze: tuple[int, int]
    grant: dict[str, Any]
    takeover: dict[str, Any]
    report: dict[str, Any]
    frozen_for: float
    exit_code: int
    stderr: str
    lines: list[dict[str, Any]]
    #: (after the second holder, after the resumed first one ended)
    rows: tuple[dict[str, Any], dict[str, Any]]
    files: tuple[dict[str, Any], dict[str, Any]]
    file_stamps: tuple[dict[str, Any], dict[str, Any]]
    dir_stamps: tuple[dict[str, Any], dict[str, Any]]
    lease_state: tuple[tuple[Any, Any], tuple[Any, Any]]
    source: dict[str, bytes | None]

    @property
    def error_lines(self) -> list[str]:
        return [raw for raw in self.stderr.splitlines() if raw.startswith("error: ")]


def run_frozen_holder(
    postgres_url: str, redis_url: str, tmp_path: Path, procs: list[Proc], freeze_at: str
) -> FrozenRun:
    """A ``controller reconcile`` with a 1 s lease frozen (SIGSTOP) at ``freeze_at``,
    a second one that takes the blog over once the lease expired, then SIGCONT.

    Snapshots are taken after the second holder finished, never before: what
    the first did before it was frozen it did under a valid lease.
    """
    import redis

    from controller.leases.redis import lease_key, token_key

    blog_id = "frozen"
    store = _empty_store(postgres_url)
    src, folder = tmp_path / "src", tmp_path / "blogs" / blog_id
    _big_source(src, 3000)
    store.add_blog(
        BlogRecord(
            id=blog_id,
            source_kind="local",
            source_config={"location": str(src)},
            folder=str(folder),
        )
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def redis_state() -> tuple[Any, Any]:
        return client.get(lease_key(blog_id)), client.get(token_key(blog_id))

    def snapshot() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        files, dirs = _split_stamps(folder)
        return store_rows(store, blog_id), tree(folder), files, dirs

    base = {
        "CONTROLLER_BLOGS_DIR": str(tmp_path / "blogs"),
        "CONTROLLER_DATABASE_URL": postgres_url,
        "CONTROLLER_REDIS_URL": redis_url,
    }
    short = controller_env(
        tmp_path,
        CONTROLLER_LEASE_TTL="1",
        CONTROLLER_LEASE_RENEW="0.3",
        CONTROLLER_INSTALL_BATCH=str(INSTALL_BATCH),
        **base,
    )
    logs = tmp_path / "logs"
    try:
        first = start("first", ["reconcile", "--blog", blog_id], short, logs)
        procs.append(first)
        grant = first.wait_for("lease acquired", timeout=30)
        if freeze_at == "acquired":
            first.popen.send_signal(signal.SIGSTOP)
        else:
            _freeze_when_installing(first, folder)
        frozen_at = time.monotonic()
        at_freeze = _folder_counts(folder)
        assert not any(line["message"] == "reconciled" for line in first.lines()), (
            "the first holder finished before it could be frozen"
        )
        time.sleep(1.5)  # past its 1 s TTL: Redis lets the lease expire

        second = start(
            "second",
            ["reconcile", "--blog", blog_id, "--wait", "10", "--json"],
            controller_env(tmp_path, **base),
            logs,
        )
        procs.append(second)
        assert second.popen.wait(timeout=120) == 0, second.tail()
        report = json.loads((logs / "second.stdout").read_text())
        takeover = next(line for line in second.lines() if line["message"] == "lease acquired")
        before, lease_before = snapshot(), redis_state()

        first.popen.send_signal(signal.SIGCONT)
        code = first.popen.wait(timeout=60)
        frozen_for = time.monotonic() - frozen_at
        after, lease_after = snapshot(), redis_state()
        return FrozenRun(
            freeze_at=freeze_at,
            at_freeze=at_freeze,
            grant=grant,
            takeover=takeover,
            report=report,
            frozen_for=frozen_for,
            exit_code=code,
            stderr=first.stderr.read_text(),
            lines=first.lines(),
            rows=(before[0], after[0]),
            files=(before[1], after[1]),
            file_stamps=(before[2], after[2]),
            dir_stamps=(before[3], after[3]),
            lease_state=(lease_before, lease_after),
            source=tree(src),
        )
    finally:
        client.close()
        store.close()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("freeze_at", ["acquired", "installing"])
def test_a_holder_frozen_past_its_ttl_gets_lease_lost_and_changes_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path, procs: list[Proc], freeze_at: str
) -> None:
    """``acquired``: frozen as soon as it logs "lease acquired" (while observing).
    ``installing``: frozen with its first 1,000 files installed and recorded and
    temporaries of the next batch in the folder; those 1,000 files were done
    legitimately, under its lease, and stay."""
    run = run_frozen_holder(postgres_url, redis_url, tmp_path, procs, freeze_at)

    # The second holder got the blog only after the first's TTL, with a newer token.
    assert run.takeover["token"] > run.grant["token"]
    assert run.takeover["ts"] - run.grant["ts"] >= 1.0
    assert run.report["errors"] == 0
    assert run.files[0] == run.source
    if freeze_at == "installing":
        assert run.report["actions"]["set"] <= 3000 - INSTALL_BATCH  # the first's batch stayed
    assert run.lease_state[0][0] is None  # released by the second

    # The resumed holder learnt it lost the lease and stopped with an error naming it.
    assert run.exit_code == 1, f"the resumed holder exited {run.exit_code}:\n{run.stderr}"
    assert run.error_lines, run.stderr
    assert "blog frozen" in run.error_lines[-1] and "lease" in run.error_lines[-1]
    assert not any(line["message"] == "reconciled" for line in run.lines)

    # ...and changed nothing: store rows, Redis, file bytes, file inodes and mtimes.
    assert run.rows[1] == run.rows[0]
    assert run.lease_state[1] == run.lease_state[0]
    assert run.files[1] == run.files[0]
    assert run.file_stamps[1] == run.file_stamps[0]  # not even rewritten with the same bytes
    lost = sum(1 for line in run.lines if line["message"] == "lease lost")
    print(
        f"[{freeze_at}] folder at freeze {run.at_freeze} (files, temporaries); tokens "
        f"{run.grant['token']} -> {run.takeover['token']}; frozen {run.frozen_for:.1f} s; "
        f"second pass {run.report['seconds']:.1f} s {run.report['actions']}; resumed holder: "
        f"{run.error_lines[-1]!r}, {lost} 'lease lost' line(s)"
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_a_holder_frozen_mid_install_writes_nothing_into_the_folder_after_the_takeover(
    postgres_url: str, redis_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    run = run_frozen_holder(postgres_url, redis_url, tmp_path, procs, "installing")
    assert run.exit_code == 1 and run.files[1] == run.files[0]  # as in the test above
    # Directory mtimes (and sizes) move when anything is created or removed in them.
    changed = sorted(p for p, s in run.dir_stamps[1].items() if run.dir_stamps[0].get(p) != s)
    assert not changed, f"the stale holder wrote into {len(changed)} directories: {changed[:5]}"


# -- test 3: the same, in one Python process -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["redis", "sql"])
def test_a_stale_holder_in_process_is_fenced_on_every_write(
    postgres_url: str, redis_url: str, tmp_path: Path, backend: str
) -> None:
    """Two Store + Leases pairs stand for two processes (fences are per Store)."""
    from datetime import UTC, datetime

    blog_id = "stale"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_bytes(_post(random.Random(1), 1))
    leases_in = redis_url if backend == "redis" else None  # None: the store's database
    store_a = _empty_store(postgres_url)
    store_b = Store(postgres_url)
    store_a.add_blog(
        BlogRecord(
            id=blog_id,
            source_kind="local",
            source_config={"location": str(src)},
            folder=str(tmp_path / "blog"),
        )
    )
    # A never renews on its own (as if frozen); B renews normally.
    frozen = Settings(database_url=postgres_url, redis_url=leases_in, lease_ttl=0.5, lease_renew=60)
    normal = Settings(database_url=postgres_url, redis_url=leases_in, lease_ttl=5, lease_renew=1)
    leases_a, leases_b = open_leases(store_a, frozen), open_leases(store_b, normal)
    try:
        with leases_a.hold(blog_id) as lease_a:
            store_a.set_status(blog_id, "a-holds")  # legitimate: A holds the lease
            time.sleep(0.7)  # past A's TTL
            with leases_b.hold(blog_id, wait=2) as lease_b:
                assert lease_b.token > lease_a.token
                store_b.set_status(blog_id, "b-holds")
                store_b.log(blog_id, "b was here")
                during = store_rows(store_a, blog_id)

                with pytest.raises(LeaseLost, match=blog_id):
                    lease_a.check()  # A's own clock says its lease may be gone
                writes: list[Callable[[], object]] = [
                    lambda: store_a.set_status(blog_id, "a-again"),
                    lambda: store_a.set_dirty(blog_id, True),
                    lambda: store_a.mark_settled(blog_id),
                    lambda: store_a.log(blog_id, "a was here"),
                    lambda: store_a.save_observation(
                        blog_id, Observation(upserts=(), deletes=("a.md",), cursor="a")
                    ),
                    lambda: store_a.record(blog_id, [], time.time_ns()),
                    lambda: store_a.repair_synced(blog_id, ["a.md"], []),
                    lambda: store_a.record_pass(
                        blog_id,
                        at=datetime.now(UTC),
                        seconds=1.0,
                        result="ok",
                        message=None,
                        history_limit=100,
                        generation=99,
                    ),
                ]
                for write in writes:  # every kind of fenced write the store has
                    with pytest.raises(LeaseLost, match="newer lease holder"):
                        write()
                assert store_rows(store_a, blog_id) == during
                leases_a.renew_now()
                assert lease_a.lost is not None
            after_b = store_rows(store_a, blog_id)
            # B released; A's token is still older than the fence: still rejected.
            with pytest.raises(LeaseLost):
                store_a.set_status(blog_id, "a-after-b")
            assert store_rows(store_a, blog_id) == after_b
        blog = store_a.get_blog(blog_id)
        assert blog.status == "b-holds"
        assert [h.result for h in store_a.history(blog_id)] == ["b was here"]
        # A fresh acquisition by A's process is fenced with a newer token and may write.
        with leases_a.hold(blog_id) as again:
            assert again.token > lease_b.token
            store_a.set_status(blog_id, "a-new-lease")
        assert store_a.get_blog(blog_id).status == "a-new-lease"
    finally:
        leases_a.close()
        leases_b.close()
        store_a.close()
        store_b.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["redis", "sql"])
def test_a_lease_released_during_its_renewal_is_not_reported_lost(
    postgres_url: str, redis_url: str, tmp_path: Path, backend: str
) -> None:
    """Seen in the four-replica run: "lease lost" right after "lease released"."""
    import threading

    from controller.metrics import Metrics

    blog_id = "raced"
    store = _empty_store(postgres_url)
    store.add_blog(
        BlogRecord(
            id=blog_id,
            source_kind="local",
            source_config={"location": str(tmp_path)},
            folder=str(tmp_path / "blog"),
        )
    )
    metrics = Metrics()
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url if backend == "redis" else None,
        lease_renew=3600,  # renewals only when the test asks
    )
    leases = open_leases(store, settings, metrics)
    renewing, release_done = threading.Event(), threading.Event()
    real_renew = leases._renewal_backend.renew

    def renew_after_the_release(grant: Any, ttl_ns: int) -> bool:
        renewing.set()
        release_done.wait(5)
        return real_renew(grant, ttl_ns)

    leases._renewal_backend.renew = renew_after_the_release  # type: ignore[method-assign]
    renewer = threading.Thread(target=leases.renew_now)
    try:
        with leases.hold(blog_id) as lease:
            renewer.start()
            assert renewing.wait(5)  # the renewer has its snapshot: the held lease
        release_done.set()  # the block ended: the lease is released
        renewer.join(5)
        lost = metrics.registry.get_sample_value("controller_lease_lost_total")
        assert (lease.lost, lost) == (None, 0.0)
    finally:
        release_done.set()
        leases.close()
        store.close()
