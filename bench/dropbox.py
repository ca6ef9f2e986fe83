"""Dropbox-source scenarios against the local HTTPS fake (issue 9: S7 and S2a).

    python -m bench.dropbox --files 10000 --runs 3

S7 times a first sync with 20 ms per download at several ``dropbox_concurrency``
values: with downloads the only latency, an ideal client reaches
concurrency ÷ latency files/s, and the target is 80% of that. S2a times a pass
after convergence (one ``list_folder/continue`` with nothing new) and takes
away one continue round trip timed separately with the SDK, leaving what the
controller itself spends. Both run in-process through ``Reconciler``: the fake
lives in this process, and the SDK must be pointed at it before ``dropbox`` is
imported, which is why this module sets the environment at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from dropbox_fake import FakeDropbox, prebound_listener, sdk_environment  # noqa: E402

os.environ.update(sdk_environment(prebound_listener()))

from bench.runner import Result, profile_top, timed  # noqa: E402
from bench.trees import tree_files  # noqa: E402

APP_KEY, APP_SECRET, ROOT = "bench-key", "bench-secret", "/Blogs/Bench"
LATENCY = 0.02
CONTINUE = "files/list_folder/continue"


@contextmanager
def fake_dropbox(fake: Any = None) -> Iterator[Any]:
    """The fake to use: the caller's (a test fixture's), or one started here."""
    if fake is not None:
        fake.reset()
        yield fake
        return
    own = FakeDropbox().start(sock=prebound_listener())
    try:
        yield own
    finally:
        own.stop()


@dataclass
class Account:
    fake: Any
    account: str
    refresh: str
    files: dict[str, bytes]


def populate(fake: Any, files: int) -> Account:
    """An app, an account and the benchmark tree in its blog folder (no latency on puts)."""
    fake.add_app(APP_KEY, APP_SECRET)
    account = fake.add_account(email="bench@example.com", display_name="Bench")
    fake.mkdir(account, ROOT)
    tree = tree_files(files, seed=7)
    for rel, data in tree.items():
        fake.put(account, f"{ROOT}/{rel}", data)
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

    def reconcile(self) -> Any:
        return self.reconciler.reconcile("b")

    def check_converged(self) -> None:
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


def initial_sync(
    work: Path, acct: Account, concurrency: int, runs: int, keep_last: bool = False
) -> tuple[Result, Blog | None]:
    """S7 at one concurrency: ``runs`` first syncs, each into a fresh store and folder."""
    fake = acct.fake
    result = Result(f"concurrency {concurrency}", unit="files/s")
    kept = None
    for i in range(runs):
        blog = Blog(work / f"c{concurrency}-{i}", acct, concurrency)
        fake.latency = {"files/download": LATENCY}
        try:
            before = len(fake.downloads)
            seconds = timed(blog.reconcile)
        finally:
            fake.latency = {}
        blog.check_converged()
        if len(fake.downloads) - before != len(acct.files):
            raise AssertionError("each file should be downloaded exactly once")
        result.samples.append(len(acct.files) / seconds)
        if keep_last and i == runs - 1:
            kept = blog
        else:
            blog.close()
    return result, kept


def round_trip(acct: Account, runs: int) -> Result:
    """One ``list_folder/continue`` with nothing new, from the SDK alone."""
    import dropbox

    from controller.dropbox.client import make_client

    settings = _settings(Path(tempfile.gettempdir()), acct.fake, 1)
    client: dropbox.Dropbox = make_client(settings, refresh_token=acct.refresh)
    page = client.files_list_folder(ROOT, recursive=True)
    while page.has_more:
        page = client.files_list_folder_continue(page.cursor)
    result = Result("list_folder/continue round trip (SDK)")
    for _ in range(runs):
        result.samples.append(timed(lambda: client.files_list_folder_continue(page.cursor)))
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
    top = profile_top(blog.reconcile)
    trip = round_trip(blog.acct, runs)
    beyond = Result("controller time beyond the round trip")
    beyond.samples = [s - trip.median for s in passes.samples]
    blog.check_converged()
    passes.note = "; ".join(top)
    return {"pass": passes, "round_trip": trip, "beyond": beyond}


def run(
    work: Path,
    plan: dict[int, tuple[int, int]],
    noop_sizes: tuple[int, ...],
    noop_runs: int,
    fake: Any = None,
) -> dict[str, object]:
    """``plan``: concurrency -> (files, runs) for S7; then S2a at each of ``noop_sizes``."""
    out: dict[str, object] = {"s7": {}, "s2a": {}}
    with fake_dropbox(fake) as fk:
        for concurrency, (count, runs) in plan.items():
            fk.reset()
            acct = populate(fk, count)
            result, _ = initial_sync(work, acct, concurrency, runs)
            result.note = f"{count:,} files"
            out["s7"][concurrency] = result  # type: ignore[index]
        for size in noop_sizes:
            fk.reset()
            acct = populate(fk, size)
            blog = Blog(work / f"noop-{size}", acct, 32)
            blog.reconcile()
            blog.check_converged()
            out["s2a"][size] = noop_pass(blog, noop_runs)  # type: ignore[index]
            blog.close()
    return out


def target_rate(concurrency: int) -> float:
    return 0.8 * concurrency / LATENCY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--noop", type=int, nargs="*", default=[10_000])
    args = parser.parse_args()
    plan = {c: (args.files, args.runs) for c in (1, 8, 32)}
    with tempfile.TemporaryDirectory(prefix="bench-dbx-") as tmp:
        out = run(Path(tmp), plan, tuple(args.noop), 5)
    print(
        json.dumps(
            {
                "s7": {c: r.as_dict() for c, r in out["s7"].items()},  # type: ignore[attr-defined]
                "s2a": {
                    n: {k: r.as_dict() for k, r in rows.items()}
                    for n, rows in out["s2a"].items()  # type: ignore[attr-defined]
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
