"""Scenario S8 (issue 9): N ``controller run`` replicas over many Dropbox blogs.

    python -m bench.replicas --blogs 1000 --files 5 --replicas 1 2 4 --runs 5

Replicas share one PostgreSQL store and one Redis, as in docs/operations.md;
the question is how throughput grows with replicas when every download waits
20 ms. Each run starts from an emptied store holding only the connected blogs,
a flushed Redis and no blog folders, and is timed from the first process start
(start-up is part of scaling out) until the store has every file synced and
every blog's pass recorded ``ok``. A run counts only once every folder equals
its Dropbox tree byte for byte and every file was downloaded exactly once: two
replicas fetching one blog would be a fast wrong answer. Entry builds are off
(``CONTROLLER_BUILDERS={".md": ""}``): S1 measures builds, here their CPU
would hide the scaling. The fake Dropbox runs in this process; each run
reports the CPU it took beside the replicas' own, to show which one was short.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

# Sorted first, and must be: it points the SDK at the fake at import time and
# puts tests/ (dropbox_fake) on sys.path.
from bench.dropbox import APP_KEY, APP_SECRET, LATENCY, fake_dropbox
from bench.runner import Result
from bench.trees import tree_files

CONTROLLER = str(Path(sys.executable).with_name("controller"))
RUN = ["--log-format", "json", "-v", "run", "--no-longpoll"]
SCHEMA = "bench_replicas"
PROBLEMS = {"lease lost", "pass crashed", "lease not released (it will expire)"}
STOP_TIMEOUT = 40.0
#: Both figures in one round trip: the driver polls every 50 ms.
CONVERGED_SQL = (
    "SELECT (SELECT count(*) FROM synced_nodes WHERE kind = 'file' AND state = 'synced'),"
    " (SELECT count(*) FROM blogs WHERE last_pass_result = 'ok')"
)


def backends() -> tuple[str, str]:
    """The URLs from the environment, checked now: a missing server is an error naming it.

    A URL without a ``search_path`` gets a schema of its own, so emptying the
    store between runs never touches tables someone keeps in that database.
    """
    import redis
    from sqlalchemy import create_engine, text

    pg = os.environ.get(
        "CONTROLLER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    rd = os.environ.get("CONTROLLER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        url = "postgresql+psycopg://" + pg.split("://", 1)[1]
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            if "search_path" not in pg:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        engine.dispose()
        redis.Redis.from_url(rd, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"S8 needs Redis: {rd} does not answer: {exc}") from None
    except Exception as exc:
        raise RuntimeError(f"S8 needs PostgreSQL: {pg} does not answer: {exc}") from None
    if "search_path" not in pg:
        pg += ("&" if "?" in pg else "?") + f"options=-csearch_path%3D{SCHEMA}"
    return pg, rd


class Setup:
    """The fake's blogs, and the store as ``connect_blog`` left it, put back before each run.

    Connecting costs two API calls and a blog listing per blog (about 45 s for
    1,000 blogs here): done once, its rows are saved and restored per run.
    """

    def __init__(self, work: Path, fake: Any, blogs: int, files: int, pg: str, rd: str) -> None:
        from sqlalchemy import MetaData, select

        from controller.dropbox.connect import connect_blog
        from controller.settings import Settings
        from controller.store import Store

        self.work, self.fake, self.pg, self.rd = work, fake, pg, rd
        self.blogs, self.files = blogs, blogs * files
        fake.add_app(APP_KEY, APP_SECRET)
        account = fake.add_account(email="bench@example.com", display_name="Bench")
        refresh = fake.refresh_token(account, APP_KEY)
        self.trees = {f"b{i:04d}": tree_files(files, seed=i) for i in range(blogs)}
        for blog_id, tree in self.trees.items():
            fake.mkdir(account, f"/Blogs/{blog_id}")
            for rel, data in tree.items():
                fake.put(account, f"/Blogs/{blog_id}/{rel}", data)
        self.store = Store(pg, auto_upgrade=True)
        self.meta = MetaData()
        self.meta.reflect(self.store.engine)
        self.tables = [t for t in self.meta.sorted_tables if t.name != "alembic_version"]
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._restore()
        settings = Settings(
            data_dir=work / "driver",
            database_url=pg,
            dropbox_app_key=APP_KEY,
            dropbox_app_secret=APP_SECRET,
            dropbox_ca_certs=Path(fake.ca_path),
        )
        for blog_id in self.trees:
            connect_blog(
                settings,
                self.store,
                blog_id=blog_id,
                path=f"/Blogs/{blog_id}",
                folder=str(self.folder(blog_id)),
                refresh_token=refresh,
                access_token=None,
                app_key=None,
                app_secret=None,
            )
        with self.store.engine.connect() as conn:
            for t in self.tables:
                self.rows[t.name] = [dict(r) for r in conn.execute(select(t)).mappings()]

    def folder(self, blog_id: str) -> Path:
        return self.work / "blogs" / blog_id

    def _restore(self) -> None:
        """Every table emptied, then the rows saved after connecting (none yet at first)."""
        from sqlalchemy import text

        with self.store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(t.name for t in self.tables)} CASCADE"))
            for t in self.tables:
                if self.rows.get(t.name):
                    conn.execute(t.insert(), self.rows[t.name])

    def reset(self) -> None:
        """The store as just connected, a flushed Redis, no blog folders or data dirs."""
        import redis

        self._restore()
        redis.Redis.from_url(self.rd).flushdb()
        shutil.rmtree(self.work / "blogs", ignore_errors=True)
        shutil.rmtree(self.work / "data", ignore_errors=True)

    def converged(self) -> bool:
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            files, ok = conn.execute(text(CONVERGED_SQL)).one()
        return bool(files == self.files and ok == self.blogs)

    def check(self, downloads: list[tuple[str, str, str]]) -> None:
        """Every folder equals its Dropbox tree; every file was downloaded exactly once."""
        for blog_id, expected in self.trees.items():
            root = self.folder(blog_id)
            files = [p for p in root.rglob("*") if p.is_file()]
            got = {p.relative_to(root).as_posix(): p.read_bytes() for p in files}
            if got != expected:
                wrong = sorted(p for p in set(got) | set(expected) if got.get(p) != expected.get(p))
                raise AssertionError(f"S8: {blog_id} did not converge: {wrong[:5]} differ")
        counts = Counter(path for _, path, _ in downloads)
        twice = sorted(p for p, n in counts.items() if n > 1)
        if twice or len(counts) != self.files:
            raise AssertionError(
                f"S8: each file should be downloaded once per run: {len(counts)} of"
                f" {self.files} files downloaded, {len(twice)} more than once {twice[:5]}"
            )


def _env(setup: Setup, replica: int) -> dict[str, str]:
    """A replica's environment: none of ours leaks in; the SDK hosts point at the fake."""
    from dropbox_fake import prebound_listener, sdk_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLLER_")}
    env.update(sdk_environment(prebound_listener()))
    env.update(
        CONTROLLER_DATABASE_URL=setup.pg,
        CONTROLLER_REDIS_URL=setup.rd,
        CONTROLLER_DATA_DIR=str(setup.work / "data" / f"replica-{replica}"),
        CONTROLLER_DROPBOX_CA_CERTS=str(setup.fake.ca_path),
        CONTROLLER_DROPBOX_APP_KEY=APP_KEY,
        CONTROLLER_DROPBOX_APP_SECRET=APP_SECRET,
        CONTROLLER_BUILDERS=json.dumps({".md": ""}),
    )
    return env


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds of live processes and their descendants (the build pool), Linux only."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = entry.read_text().rsplit(")", 1)[1].split()
            stats[int(entry.parent.name)] = (int(f[1]), int(f[11]) + int(f[12]))
    tree = set(pids)
    while more := {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree:
        tree |= more
    ticks = sum(stats[pid][1] for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK") if stats else float("nan")


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (Linux): its own peak, read before it is stopped."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a replica's log (a plain line like "controller stopped" is skipped)."""
    raw = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in raw if line.startswith("{") and line.endswith("}")]


def _tail(path: Path, n: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def one_run(setup: Setup, replicas: int, tag: str) -> dict[str, Any]:
    """Start ``replicas`` daemons, time them to convergence, stop them, check the result."""
    setup.reset()
    fake, logs = setup.fake, setup.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    before, fake.latency = len(fake.downloads), {"files/download": LATENCY}
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    timeout = 60 + 0.05 * setup.files
    try:
        wall, start, cpu = time.time(), time.perf_counter(), _self_cpu_s()
        for k in range(replicas):
            err = logs / f"{tag}-replica-{k}.log"
            with open(err, "wb") as out:
                argv, env = [CONTROLLER, *RUN], _env(setup, k)
                popen = subprocess.Popen(argv, env=env, stdout=out, stderr=out, stdin=DEVNULL)
            procs.append((popen, err))
        while not setup.converged():
            for popen, err in procs:
                if popen.poll() is not None:
                    raise AssertionError(f"S8: a replica exited {popen.returncode}:\n{_tail(err)}")
            if time.perf_counter() - start > timeout:
                raise AssertionError(f"S8: {replicas} replicas did not converge in {timeout:.0f} s")
            time.sleep(0.05)
        detail: dict[str, Any] = {
            "seconds": time.perf_counter() - start,
            # Where the CPU went: replicas (with their build pools) and this process (the fake).
            "replicas_cpu_s": _cpu_s([popen.pid for popen, _ in procs]),
            "driver_cpu_s": _self_cpu_s() - cpu,
            "rss_mb": max(_peak_rss_mb(popen.pid) for popen, _ in procs),
        }
        stopping = time.perf_counter()
        for popen, _ in procs:
            popen.send_signal(signal.SIGTERM)
        for popen, err in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=max(0.1, stopping + STOP_TIMEOUT - time.perf_counter()))
            if popen.returncode != 0:
                why = f"exited {popen.returncode}" if popen.returncode else "still runs"
                raise AssertionError(f"S8: SIGTERM: a replica {why}:\n{_tail(err)}")
        detail["stop_s"] = time.perf_counter() - stopping
    finally:
        fake.latency = {}
        for popen, _ in procs:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
    setup.check(fake.downloads[before:])
    return detail | _spread([_log(err) for _, err in procs], wall)


def _spread(logs: list[list[dict[str, Any]]], wall: float) -> dict[str, Any]:
    """Passes and leases per replica, the slowest start-up, and what the logs complain of."""
    started = [x["ts"] - wall for lines in logs for x in lines if x["message"] == "daemon started"]
    problems = Counter(
        f"{x['level']}: {x['message']}"
        for lines in logs
        for x in lines
        if x["level"] in {"warning", "error", "critical"} or x["message"] in PROBLEMS
    )
    return {
        "passes": [sum(x["message"] == "reconciled" for x in lines) for lines in logs],
        "leases": [sum(x["message"] == "lease acquired" for x in lines) for lines in logs],
        "startup_s": max(started, default=float("nan")),
        "problems": dict(problems),
    }


def run(
    work: Path,
    blogs: int,
    files_per_blog: int,
    replicas: tuple[int, ...],
    runs: int,
    postgres_url: str,
    redis_url: str,
    fake: Any = None,
) -> dict[str, Any]:
    """S8: ``rows`` (replicas -> Result in blogs/s), ``files_per_s`` (the same runs in
    files/s), ``runs_detail`` (replicas -> per run: seconds, CPU, stop time, passes
    and leases per replica, start-up, counted warnings), and the sizes for the report."""
    out: dict[str, Any] = {"blogs": blogs, "files": blogs * files_per_blog, "runs": runs}
    out |= {"files_per_blog": files_per_blog, "latency": LATENCY, "builds": False}
    rows: dict[int, Result] = {}
    files: dict[int, Result] = {}
    details: dict[int, list[dict[str, Any]]] = {}
    out |= {"rows": rows, "files_per_s": files, "runs_detail": details}
    with fake_dropbox(fake) as fk:
        setup = Setup(work, fk, blogs, files_per_blog, postgres_url, redis_url)
        try:
            for n in replicas:
                label = f"{n} replica{'s' if n > 1 else ''}"
                rows[n] = Result(label, unit="blogs/s", note=f"{blogs:,} blogs")
                files[n] = Result(label, unit="files/s", note=f"{out['files']:,} files")
                details[n] = [one_run(setup, n, f"r{n}-{i}") for i in range(runs)]
                for d in details[n]:
                    rows[n].samples.append(blogs / d["seconds"])
                    files[n].samples.append(out["files"] / d["seconds"])
                    rows[n].rss_mb.append(d["rss_mb"])
                    files[n].rss_mb.append(d["rss_mb"])
        finally:
            setup.store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blogs", type=int, default=1000)
    parser.add_argument("--files", type=int, default=5, help="files per blog")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pg, rd = backends()
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        out = run(Path(tmp), args.blogs, args.files, tuple(args.replicas), args.runs, pg, rd)
    out["rows"] = {n: r.as_dict() for n, r in out["rows"].items()}
    out["files_per_s"] = {n: r.as_dict() for n, r in out["files_per_s"].items()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
