"""The library API ``with controller.sync(blog) as folder:`` on a real local-source blog.

Each test runs twice: on the embedded default (SQLite store, leases in SQLite)
and on the replica setup (PostgreSQL store, leases in Redis). Other processes
are real: ``python -c`` running ``controller.sync`` and ``controller reconcile``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import tree, truncate_store

import controller
from controller import api
from controller.errors import LeaseLost, UnknownBlog
from controller.leases import Leases
from controller.leases.base import LeaseBackend
from controller.leases.redis import RedisLeases
from controller.leases.sql import SqlLeases
from controller.metrics import Metrics
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.errors import InvalidPath

BLOG = "b"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"
CONTROLLER = Path(sys.executable).with_name("controller")
ME = f"{socket.gethostname()}:{os.getpid()}"
SINCE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
BUSY = re.compile(rf"blog {BLOG} is busy \(held by {re.escape(ME)} since {SINCE}\)")
NEW_POST = "Title: Fresh from sync\nTags: api\n\nWritten by a sync() caller.\n"
SYNC_ELSEWHERE = """
import sys
import controller
from controller.errors import LeaseBusy
from controller.settings import Settings
print("trying", flush=True)
try:
    with controller.sync(sys.argv[1], wait=float(sys.argv[2]), settings=Settings()) as folder:
        print("held", folder.path)
except LeaseBusy as exc:
    print(exc)
    sys.exit(3)
"""


@dataclass
class SyncBlog:
    settings: Settings
    store: Store  # a reader of our own, apart from the one sync() opens
    src: Path
    folder: Path
    env: dict[str, str]  # the same configuration for subprocesses

    def backend(self) -> LeaseBackend:
        if self.settings.redis_url:
            return RedisLeases(self.settings.redis_url)
        return SqlLeases(self.settings.effective_database_url)

    def holder_token(self) -> int | None:
        backend = self.backend()
        try:
            holding = backend.holding(BLOG)
            return None if holding is None else holding.token
        finally:
            backend.close()

    def other_process_leases(self) -> Leases:
        """Leases as another process would open them (its own store and connections)."""
        return Leases(Store(self.settings.effective_database_url), self.backend, metrics=Metrics())

    def assert_free(self) -> None:
        """Another process takes the blog at once (LeaseBusy otherwise)."""
        leases = self.other_process_leases()
        try:
            with leases.hold(BLOG, wait=0):
                pass
        finally:
            leases.close()
            leases.store.close()

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def tree(self) -> dict[str, bytes | None]:
        return tree(self.folder)


@pytest.fixture(params=["sqlite", "postgres-redis"])
def blog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncBlog]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLLER_")}
    env.update(CONTROLLER_DATA_DIR=str(tmp_path / "data"), NO_COLOR="1", TERM="dumb")
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", database_url=None, redis_url=None)
    else:
        database_url = request.getfixturevalue("postgres_url")
        redis_url = request.getfixturevalue("redis_url")
        truncate_store(database_url)
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, redis_url=redis_url
        )
        env.update(CONTROLLER_DATABASE_URL=database_url, CONTROLLER_REDIS_URL=redis_url)
    src, folder = tmp_path / "src", tmp_path / "blog"
    shutil.copytree(EXAMPLES, src)
    store = Store(settings.effective_database_url, auto_upgrade=True)
    store.add_blog(
        BlogRecord(
            id=BLOG, source_kind="local", source_config={"location": str(src)}, folder=str(folder)
        )
    )
    before = set(api._runtimes)
    yield SyncBlog(settings, store, src, folder, env)
    # sync() keeps one runtime per database for the process: close the ones this test made.
    for key in set(api._runtimes) - before:
        runtime = api._runtimes.pop(key)
        runtime.leases.close()
        runtime.store.close()
    store.close()


# -- the folder ---------------------------------------------------------------------


def test_folder_path_is_the_blog_folder(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        assert folder.path == blog.folder
        assert folder.blog_id == BLOG


def test_update_installs_a_new_post_and_builds_its_entry(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        first = folder.update("notes.txt")
        assert first.actions["set"] == 8 and first.errors == 1  # the sample blog, mirrored
        (blog.src / "post.md").write_text(NEW_POST)
        report = folder.update("post.md")
        assert report.actions == {"set": 1, "move": 0, "drop": 0} and report.errors == 0
        assert (folder.path / "post.md").read_text() == NEW_POST
    [entry] = [e for e in blog.store.entries(BLOG) if e.path == "post.md"]
    assert entry.title == "Fresh from sync" and entry.tags == ("api",) and not entry.deleted


def test_state_reports_synced_rejected_or_none(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        assert folder.state("notes.txt") is None  # nothing reconciled yet
        folder.update("notes.txt")
        assert folder.state("notes.txt") == "synced"
        assert folder.state("broken.md") == "rejected"
        assert folder.state("not-in-the-source.md") is None


def test_status_shows_as_the_blogs_status_message(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        folder.status("importing 3 posts")
        record = blog.store.get_blog(BLOG)
        assert (record.status, record.status_message) == ("syncing", "importing 3 posts")


def test_log_appears_in_the_blogs_history(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        folder.log("imported from the old CMS")
    [line] = blog.store.history(BLOG)
    assert (line.action, line.path, line.result) == ("log", "", "imported from the old CMS")


def test_update_refuses_a_hostile_path_naming_the_blog_and_the_path(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as folder:
        for hostile in ("../x", "/etc/passwd", "a/../../x"):
            with pytest.raises(InvalidPath) as info:
                folder.update(hostile)
            assert (info.value.blog_id, info.value.path) == (BLOG, hostile)
            assert str(info.value).startswith(f"blog {BLOG}, path {hostile!r}: ")
    assert not blog.folder.exists()  # no pass ran
    assert blog.store.history(BLOG) == []


def test_an_unknown_blog_is_refused_before_any_lease(blog: SyncBlog) -> None:
    with pytest.raises(UnknownBlog), controller.sync("nope", settings=blog.settings):
        pytest.fail("sync() entered a blog that does not exist")


# -- the lease -------------------------------------------------------------------------


def test_nested_sync_in_one_thread_shares_the_lease(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings) as outer:
        token = blog.holder_token()
        assert token is not None
        with controller.sync(BLOG, wait=0, settings=blog.settings) as inner:
            assert inner.path == outer.path
            assert blog.holder_token() == token
            inner.update("notes.txt")  # fenced writes under the shared token succeed
            inner.log("from the inner block")
        assert blog.holder_token() == token  # the inner exit did not release it
        outer.log("from the outer block")
        assert blog.store.fence_token(BLOG) == token
    assert blog.holder_token() is None
    logged = [h.result for h in blog.store.history(BLOG, limit=1000) if h.action == "log"]
    assert logged == ["from the outer block", "from the inner block"]


def test_the_lease_is_released_on_exit(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings):
        assert blog.holder_token() is not None
    assert blog.holder_token() is None
    blog.assert_free()


def test_the_lease_is_released_when_the_block_raises(blog: SyncBlog) -> None:
    class Boom(Exception):
        pass

    with (
        pytest.raises(Boom),
        controller.sync(BLOG, settings=blog.settings),
        controller.sync(BLOG, settings=blog.settings),
    ):
        raise Boom
    assert blog.holder_token() is None
    blog.assert_free()


def test_another_process_gets_lease_busy_while_this_one_holds(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings):
        api_user = blog.start(sys.executable, "-c", SYNC_ELSEWHERE, BLOG, "0.5")
        cli = blog.start(str(CONTROLLER), "reconcile", "--blog", BLOG, "--wait", "0.5")
        out, err = api_user.communicate(timeout=60)
        assert api_user.returncode == 3, err
        assert out.startswith("trying\n") and BUSY.fullmatch(out.removeprefix("trying\n").strip())

        _, err = cli.communicate(timeout=60)
        assert cli.returncode == 3, err
        assert err.startswith("error: ") and BUSY.fullmatch(err.removeprefix("error: ").strip())
    assert not blog.folder.exists()  # neither of them touched the blog


def test_another_process_waiting_gets_the_blog_once_this_one_exits(blog: SyncBlog) -> None:
    with controller.sync(BLOG, settings=blog.settings):
        waiting = blog.start(sys.executable, "-c", SYNC_ELSEWHERE, BLOG, "60")
        assert waiting.stdout is not None
        assert waiting.stdout.readline() == "trying\n"
        time.sleep(0.6)  # it asks for the lease every 0.2 s meanwhile
        assert waiting.poll() is None  # still waiting for the lease
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert out.strip() == f"held {blog.folder}"


def test_folder_methods_raise_lease_lost_once_another_process_took_over(
    blog: SyncBlog,
) -> None:
    settings = blog.settings.model_copy(update={"lease_ttl": 0.5, "lease_renew": 60.0})
    with controller.sync(BLOG, settings=settings) as folder:
        folder.status("before the pause")
        time.sleep(0.6)  # paused past the TTL, no renewal
        leases = blog.other_process_leases()
        try:
            with leases.hold(BLOG, wait=0):
                for act in (
                    lambda: folder.status("after the pause"),
                    lambda: folder.log("after the pause"),
                    lambda: folder.update("notes.txt"),
                ):
                    with pytest.raises(LeaseLost) as info:
                        act()
                    assert info.value.blog_id == BLOG
        finally:
            leases.close()
            leases.store.close()
    assert blog.store.get_blog(BLOG).status_message == "before the pause"
    assert blog.store.history(BLOG) == []
    assert not blog.folder.exists()
