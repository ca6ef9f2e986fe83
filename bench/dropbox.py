"""Dropbox-source scenarios against the local HTTPS fake (issue 9: S7 and S2a).

    python -m bench.dropbox --files 10000 --runs 5
    python -m bench.dropbox --files 0 --noop 10000 100000 1000000   # S2a (and S4) alone

S7 times a first sync with 20 ms per download at several ``dropbox_concurrency``
values: with downloads the only latency, an ideal client reaches
concurrency ÷ latency files/s, and the target is 80% of that. The controller
runs as its own process (``controller reconcile``) so that it does not share
a GIL with the fake, which lives in this process. S2a times a pass after
convergence (one ``list_folder/continue`` with nothing new) in-process and
takes away one continue round trip timed separately with the SDK, leaving
what the controller itself spends; its blogs above 10,000 files are seeded
(``bench.seed``: converged in the store without downloads). The SDK must be
pointed at the fake before ``dropbox`` is imported, which is why this module
sets the environment at import time (child processes inherit it).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from dropbox_fake import FakeDropbox, prebound_listener, sdk_environment  # noqa: E402

os.environ.update(sdk_environment(prebound_listener()))

from bench import daemon, profiles, seed  # noqa: E402
from bench.local import CONTROLLER  # noqa: E402
from bench.runner import Result, run_process, timed  # noqa: E402
from bench.trees import tree_files  # noqa: E402

APP_KEY, APP_SECRET, ROOT = "bench-key", "bench-secret", "/Blogs/Bench"
LATENCY = 0.02
CONTINUE = "files/list_folder/continue"
#: An S2a size to seed however small (``python -m bench --smoke`` seeds one).
Seeded = seed.Seeded


@contextmanager
def fake_dropbox(fake: Any = None) -> Iterator[Any]:
    """The fake to use: the caller's (a test fixture's), or this process's own.

    One per process, started on first use and reset for each scenario: the SDK
    and every child process point at the one prebound port.
    """
    if fake is None:
        fake = _own_fake()
    fake.reset()
    yield fake


@functools.cache
def _own_fake() -> Any:
    fake = FakeDropbox().start(sock=prebound_listener())
    atexit.register(fake.stop)
    return fake


@dataclass
class Account:
    fake: Any
    account: str
    refresh: str
    files: dict[str, bytes]


def populate(fake: Any, files: int) -> Account:
    """An app, an account and the benchmark tree in its blog folder (no latency on puts).

    Files go in in the order the fake lists them (folders before their
    contents), so its index of paths lies in memory in that order. Each
    listing page walks the rest of that index, and a 1M-file listing took 37 s
    of the fake's time with the index in random memory order (cache misses),
    14 s in this one. The collector is off meanwhile: the tree and a million
    puts allocate only acyclic objects.
    """
    fake.add_app(APP_KEY, APP_SECRET)
    account = fake.add_account(email="bench@example.com", display_name="Bench")
    fake.mkdir(account, ROOT)
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = tree_files(files, seed=7)
        for rel in sorted(tree, key=lambda rel: rel.split("/")):
            fake.put(account, f"{ROOT}/{rel}", tree[rel])
    finally:
        if collecting:
            gc.enable()
    return Account(fake, account, fake.refresh_token(account, APP_KEY), tree)


def _settings(work: Path, fake: Any, concurrency: int) -> Any:
    from controller.settings import Settings

    return Settings(
        data_dir=work / "data",
        database_url=f"sqlite:///{work / 'controller.db'}",
        dropbox_app_key=APP_KEY,
        dropbox_app_secret=APP_SECRET,
        dropbox_ca_certs=Path(fake.ca_path),
        dropbox_concurrency=concurrency,
        builders={".md": ""},
    )


class Blog:
    """A connected blog with its own store and folder, and a reconciler for it."""

    def __init__(self, work: Path, acct: Account, concurrency: int) -> None:
        from controller.dropbox.connect import connect_blog
        from controller.reconcile import Reconciler
        from controller.store import Store

        work.mkdir(parents=True)
        self.work, self.acct = work, acct
        #: Made converged by ``bench.seed``: the store says synced, the folder is empty.
        self.seeded = False
        self.settings = _settings(work, acct.fake, concurrency)
        self.store = Store(self.settings.effective_database_url, auto_upgrade=True)
        self.folder = work / "blog"
        connect_blog(
            self.settings,
            self.store,
            blog_id="b",
            path=ROOT,
            folder=str(self.folder),
            refresh_token=acct.refresh,
            access_token=None,
            app_key=None,
            app_secret=None,
        )
        self.reconciler = Reconciler(self.store, self.settings)

    def env(self) -> dict[str, str]:
        """The same settings for a ``controller`` process (the SDK hosts are inherited)."""
        s = self.settings
        return {
            **os.environ,
            "CONTROLLER_DATA_DIR": str(s.data_dir),
            "CONTROLLER_DATABASE_URL": s.effective_database_url,
            "CONTROLLER_DROPBOX_APP_KEY": APP_KEY,
            "CONTROLLER_DROPBOX_APP_SECRET": APP_SECRET,
            "CONTROLLER_DROPBOX_CA_CERTS": str(s.dropbox_ca_certs),
            "CONTROLLER_DROPBOX_CONCURRENCY": str(s.dropbox_concurrency),
            "CONTROLLER_BUILDERS": json.dumps(s.builders),
        }

    def reconcile(self) -> Any:
        return self.reconciler.reconcile("b")

    def check_converged(self) -> None:
        if self.seeded:
            raise RuntimeError("a seeded blog's folder holds no files: it cannot be checked")
        on_disk = {
            p.relative_to(self.folder).as_posix(): p.read_bytes()
            for p in self.folder.rglob("*")
            if p.is_file()
        }
        if on_disk != self.acct.files:
            missing = sorted(set(self.acct.files) - set(on_disk))[:5]
            extra = sorted(set(on_disk) - set(self.acct.files))[:5]
            raise AssertionError(f"Dropbox blog did not converge: missing {missing}, extra {extra}")

    def close(self) -> None:
        self.reconciler.close()
        self.store.close()
        shutil.rmtree(self.work, ignore_errors=True)


def initial_sync(work: Path, acct: Account, concurrency: int, runs: int) -> Result:
    """S7 at one concurrency: ``runs`` first syncs by a ``controller reconcile`` process.

    Each run gets a fresh store and folder; the rate is the files over the
    pass's own ``seconds`` (process start and imports are not downloads).
    """
    fake = acct.fake
    result = Result(f"concurrency {concurrency}", unit="files/s")
    for i in range(runs):
        blog = Blog(work / f"c{concurrency}-{i}", acct, concurrency)
        fake.latency = {"files/download": LATENCY}
        try:
            before = len(fake.downloads)
            run = run_process([CONTROLLER, "reconcile", "--blog", "b", "--json"], blog.env())
        finally:
            fake.latency = {}
        blog.check_converged()
        if len(fake.downloads) - before != len(acct.files):
            raise AssertionError("each file should be downloaded exactly once")
        result.samples.append(len(acct.files) / float(json.loads(run.stdout)["seconds"]))
        result.rss_mb.append(run.rss_mb)
        blog.close()
    if result.median < target_rate(concurrency) and profiles.available():
        result.note = "; ".join(_profile_sync(work / f"c{concurrency}-profile", acct, concurrency))
    return result


def _profile_sync(work: Path, acct: Account, concurrency: int) -> list[str]:
    """One more first sync, sampled by py-spy (not among the timed runs)."""
    blog = Blog(work, acct, concurrency)
    acct.fake.latency = {"files/download": LATENCY}
    try:
        return profiles.spy_command([CONTROLLER, "reconcile", "--blog", "b", "--json"], blog.env())
    finally:
        acct.fake.latency = {}
        blog.check_converged()
        blog.close()


def _client(acct: Account) -> Any:
    from controller.dropbox.client import make_client

    settings = _settings(Path(tempfile.gettempdir()), acct.fake, 1)
    return make_client(settings, refresh_token=acct.refresh)


def round_trip(acct: Account, cursor: str, runs: int) -> Result:
    """One ``list_folder/continue`` with nothing new from ``cursor``, by the SDK alone.

    ``cursor`` is the blog's own, so the fake does exactly the work the pass asks of it.
    """
    client = _client(acct)
    client.files_list_folder_continue(cursor)  # the connection and token, as the pass has them
    result = Result("list_folder/continue round trip (SDK)")
    for _ in range(runs):
        result.samples.append(timed(lambda: client.files_list_folder_continue(cursor)))
    return result


def noop_pass(blog: Blog, runs: int) -> dict[str, Result]:
    """S2a: passes on a converged blog, and the bare round trip they must contain."""
    fake = blog.acct.fake
    passes = Result("controller no-op pass")
    for _ in range(runs):
        downloads, continues = len(fake.downloads), fake.calls[CONTINUE]
        start = time.perf_counter()
        report = blog.reconcile()
        passes.samples.append(time.perf_counter() - start)
        if any(report.actions.values()) or len(fake.downloads) != downloads:
            raise AssertionError(f"a converged Dropbox pass acted: {report}")
        if fake.calls[CONTINUE] - continues != 1:
            raise AssertionError("a no-op pass should be one list_folder/continue call")
    top = profiles.cprofile(blog.reconcile)
    cursor = blog.store.get_blog("b").cursor
    assert cursor is not None
    trip = round_trip(blog.acct, cursor, runs)
    beyond = Result("controller time beyond the round trip")
    beyond.samples = [s - trip.median for s in passes.samples]
    if not blog.seeded:
        blog.check_converged()
    passes.note = "; ".join(top)
    return {"pass": passes, "round_trip": trip, "beyond": beyond}


def webhook_edits(blog: Blog, count: int) -> dict[str, Result]:
    """S4 (Dropbox): the converged blog under ``controller run --http``, one edit at a time.

    Each edit is a put into the fake followed by the signed notification
    Dropbox would send; the time runs from the put until the daemon logs the
    pass that synced the file. One download of the file, timed alone with
    the SDK, is what "beyond the download" takes away.
    """
    import socket
    import urllib.request

    from controller.dropbox.webhook import signature

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    posts = sorted(rel for rel in blog.acct.files if rel.endswith(".md"))[: count + 1]
    body = json.dumps({"list_folder": {"accounts": [blog.acct.account]}}).encode()
    notify = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/dropbox/",
        data=body,
        headers={"X-Dropbox-Signature": signature(APP_SECRET, body)},
    )
    args = ("--http", f"127.0.0.1:{port}", "--no-longpoll", "--no-watch")
    rows = daemon.edit_rows()
    rows["download"] = Result("one download of the file (SDK, alone)")

    def change(rel: str, i: int) -> Callable[[], None]:
        data = blog.acct.files[rel] + f"\n\nedit {i}\n".encode()
        blog.acct.files[rel] = data

        def edit() -> None:
            blog.acct.fake.put(blog.acct.account, f"{ROOT}/{rel}", data)
            urllib.request.urlopen(notify, timeout=10).read()

        return edit

    blog.reconciler.close()
    proc = daemon.Daemon.start(CONTROLLER, blog.env(), blog.work / "daemon-logs", *args)
    try:
        daemon.edits(proc, [change(rel, i) for i, rel in enumerate(posts)], rows)
    finally:
        proc.stop()
    blog.check_converged()
    client = _client(blog.acct)
    for rel in posts:
        start = time.perf_counter()
        _, response = client.files_download(f"{ROOT}/{rel}")
        if response.content != blog.acct.files[rel]:
            raise AssertionError(f"{rel}: the SDK downloaded other bytes than the fake holds")
        rows["download"].samples.append(time.perf_counter() - start)
    return rows


def run(
    work: Path,
    plan: dict[int, tuple[int, int]],
    noop_sizes: tuple[int, ...],
    noop_runs: int,
    fake: Any = None,
) -> dict[str, object]:
    """``plan``: concurrency -> (files, runs) for S7; then S2a at each of ``noop_sizes``.

    An S2a blog up to ``seed.REAL_MAX`` files is made by a real first sync and
    checked on disk; a larger one (or a ``seed.Seeded`` size) is seeded, after
    ``seed.check`` has compared a seed with a real first sync at a small size.
    S4 runs on the largest real blog, whose files are on disk.
    """
    out: dict[str, object] = {"s7": {}, "s7_files": {}, "s2a": {}, "s2a_seeded": {}}
    real = [size for size in noop_sizes if not seed.is_seeded(size)]
    with fake_dropbox(fake) as fk:
        for concurrency, (count, runs) in plan.items():
            fk.reset()
            acct = populate(fk, count)
            result = initial_sync(work, acct, concurrency, runs)
            out["s7_files"][concurrency] = count  # type: ignore[index]
            out["s7"][concurrency] = result  # type: ignore[index]
        if len(real) < len(noop_sizes):
            fk.reset()
            small = populate(fk, seed.CHECK_FILES)
            out["seed_check"] = seed.check(work / "seed-check", small, lambda w, a: Blog(w, a, 32))
        for i, size in enumerate(noop_sizes):
            fk.reset()
            start = time.perf_counter()
            acct = populate(fk, size)
            populated = time.perf_counter() - start
            blog = Blog(work / f"noop-{i}-{size}", acct, 32)
            if seed.is_seeded(size):
                # The fake's millions of objects are the bench's, not the controller's:
                # frozen, the collector no longer walks them in every pass it times.
                gc.freeze()
                seeded = seed.seed(blog)
                out["s2a_seeded"][size] = {"populate_s": populated, "seed_s": seeded}  # type: ignore[index]
            else:
                blog.reconcile()
                blog.check_converged()
            out["s2a"][size] = noop_pass(blog, noop_runs)  # type: ignore[index]
            if not blog.seeded and size == max(real):
                out["s4"] = webhook_edits(blog, noop_runs)
                out["s4_files"] = size
            blog.close()
            gc.unfreeze()
    return out


def target_rate(concurrency: int) -> float:
    return 0.8 * concurrency / LATENCY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--noop", type=int, nargs="*", default=[10_000], help="S2a sizes (seeded above 10,000)"
    )
    parser.add_argument(
        "--seed", type=int, nargs="*", default=[], help="S2a sizes to seed however small"
    )
    args = parser.parse_args()
    plan = {c: (args.files, args.runs) for c in (1, 8, 32)} if args.files else {}
    sizes = (*args.noop, *(seed.Seeded(n) for n in args.seed))
    with tempfile.TemporaryDirectory(prefix="bench-dbx-") as tmp:
        out = run(Path(tmp), plan, sizes, 5)
    print(
        json.dumps(
            {
                "s7": {c: r.as_dict() for c, r in out["s7"].items()},  # type: ignore[attr-defined]
                "s2a": {
                    n: {k: r.as_dict() for k, r in rows.items()}
                    for n, rows in out["s2a"].items()  # type: ignore[attr-defined]
                },
                "s2a_seeded": out["s2a_seeded"],
                "seed_check": out.get("seed_check"),
                "s4": {k: r.as_dict() for k, r in out.get("s4", {}).items()},  # type: ignore[attr-defined]
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
