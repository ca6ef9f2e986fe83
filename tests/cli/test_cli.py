"""The ``controller`` command line, through the real executable.

Every test runs the installed ``controller`` script in a subprocess with its own
``CONTROLLER_DATA_DIR`` (and so its own SQLite store) under ``tmp_path``, and
checks the exact JSON contract scripts rely on, exit statuses, and the one-line
error messages on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support import Cli, controller_env, tree

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"

BROKEN_MESSAGE = "Invalid metadata on line 2"
NO_ACTIONS = {"set": 0, "move": 0, "drop": 0}
ENTRY_KEYS = {"id", "path", "title", "date", "created", "updated", "tags", "draft", "deleted"}
BLOG_KEYS = {
    "id",
    "source",
    "folder",
    "status",
    "status_message",
    "last_pass_at",
    "last_pass_seconds",
    "last_pass_result",
    "generation",
    "pass_generation",
    "failures",
    "next_pass_at",
    "last_full_at",
}


# -- running the executable ---------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(controller_env(tmp_path))


class Sample:
    """``examples/blog`` copied to ``src``, registered as blog ``demo`` into ``folder``."""

    def __init__(self, cli: Cli, root: Path, blog: str = "demo") -> None:
        self.cli = cli
        self.blog = blog
        self.src = root / "src"
        self.folder = root / "blog"
        shutil.copytree(EXAMPLES, self.src)
        self.add()

    def add(self) -> None:
        self.cli.run(
            "blog", "add", self.blog, "--source", f"local:{self.src}", "--folder", str(self.folder)
        )

    def reconcile(self, *extra: str) -> dict[str, Any]:
        report = self.cli.json("reconcile", "--blog", self.blog, *extra)
        check_reconcile_json(report, self.blog)
        return report

    def status(self) -> dict[str, Any]:
        status = self.cli.json("status", "--blog", self.blog)
        check_status_json(status, self.blog)
        return status

    def entries(self) -> list[dict[str, Any]]:
        entries = self.cli.json("entries", "--blog", self.blog)
        check_entries_json(entries)
        return entries

    def live(self, entries: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """Live entries by path (exactly one per path)."""
        live = [e for e in (self.entries() if entries is None else entries) if not e["deleted"]]
        assert len({e["path"] for e in live}) == len(live), "two live entries at one path"
        return {e["path"]: e for e in live}


@pytest.fixture
def sample(cli: Cli, tmp_path: Path) -> Sample:
    return Sample(cli, tmp_path)


# -- the JSON contract ------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_reconcile_json(report: object, blog: str) -> None:
    assert isinstance(report, dict)
    assert set(report) == {"blog", "actions", "errors", "passes", "seconds"}
    assert report["blog"] == blog
    assert isinstance(report["actions"], dict)
    assert set(report["actions"]) == {"set", "move", "drop"}
    assert all(_is_int(n) and n >= 0 for n in report["actions"].values())
    assert _is_int(report["errors"]) and report["errors"] >= 0
    assert _is_int(report["passes"]) and report["passes"] >= 1
    seconds = report["seconds"]
    assert isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0


def check_status_json(status: object, blog: str) -> None:
    assert isinstance(status, dict)
    assert set(status) == {"blog", "counts", "files"}
    assert status["blog"] == blog
    assert isinstance(status["counts"], dict)
    assert all(isinstance(k, str) and _is_int(v) for k, v in status["counts"].items())
    assert isinstance(status["files"], list)
    for item in status["files"]:
        assert set(item) == {"path", "state", "error"}
        path = item["path"]
        assert isinstance(path, str) and path and not path.startswith("/") and "\\" not in path
        assert "" not in path.split("/")
        assert isinstance(item["state"], str)
        assert item["error"] is None or isinstance(item["error"], str)
    assert status["counts"] == dict(Counter(item["state"] for item in status["files"]))


def check_entries_json(entries: object) -> None:
    assert isinstance(entries, list)
    for entry in entries:
        assert set(entry) == ENTRY_KEYS
        assert isinstance(entry["id"], str) and entry["id"]
        assert isinstance(entry["path"], str) and not entry["path"].startswith("/")
        assert isinstance(entry["title"], str)
        for key in ("date", "created", "updated"):
            assert isinstance(entry[key], str)
            datetime.fromisoformat(entry[key])
        assert isinstance(entry["tags"], list) and all(isinstance(t, str) for t in entry["tags"])
        assert isinstance(entry["draft"], bool) and isinstance(entry["deleted"], bool)


# -- folder helpers -------------------------------------------------------------------------


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (inode, mtime_ns): what changes when a file is rewritten."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def inodes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_ino for p in root.rglob("*")}


def _touch_later(path: Path) -> None:
    """Give ``path`` an mtime clearly after its last one (coarse-clock safe)."""
    st = path.stat()
    later = st.st_mtime_ns + 5 * 10**9
    os.utime(path, ns=(later, later))


# -- the sample blog ---------------------------------------------------------------------------


def test_first_reconcile_sets_every_file_and_reports_broken_md_as_the_one_error(
    sample: Sample,
) -> None:
    report = sample.reconcile()
    assert report["actions"] == {"set": len(files_of(sample.src)), "move": 0, "drop": 0}
    assert report["errors"] == 1
    assert tree(sample.folder) == tree(sample.src)


def test_first_reconcile_names_broken_md_and_its_message_in_human_output(
    sample: Sample,
) -> None:
    proc = sample.cli.run("reconcile", "--blog", sample.blog)
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert lines[0].startswith("blog demo: 8 set, 0 move, 0 drop, 1 error in ")
    error_lines = [line for line in lines if line.startswith("error ")]
    assert len(error_lines) == 1, proc.stdout
    assert error_lines[0].startswith("error  broken.md:")
    assert BROKEN_MESSAGE in error_lines[0]


def test_second_reconcile_reports_zero_actions(sample: Sample) -> None:
    sample.reconcile()
    before = stamps(sample.folder)
    report = sample.reconcile()
    assert report["actions"] == NO_ACTIONS
    assert report["errors"] == 0
    assert stamps(sample.folder) == before  # nothing was rewritten


def test_status_json_lists_every_file_and_shows_broken_md_rejected(sample: Sample) -> None:
    sample.reconcile()
    status = sample.status()
    by_path = {item["path"]: item for item in status["files"]}
    assert set(by_path) == files_of(sample.src)  # files only: no directories
    broken = by_path["broken.md"]
    assert broken["state"] == "rejected"
    assert BROKEN_MESSAGE in broken["error"]
    others = [item for path, item in by_path.items() if path != "broken.md"]
    assert all(item["state"] == "synced" and item["error"] is None for item in others)
    assert status["counts"] == {"synced": len(others), "rejected": 1}


def test_status_before_any_reconcile_is_empty(sample: Sample) -> None:
    assert sample.status() == {"blog": "demo", "counts": {}, "files": []}


def test_entries_json_has_one_entry_per_post_and_marks_drafts(sample: Sample) -> None:
    sample.reconcile()
    entries = sample.entries()
    assert all(not e["deleted"] for e in entries)
    live = sample.live(entries)
    assert set(live) == {
        "2024-06-12-summer-plans.md",
        "drafts/unfinished-thoughts.md",
        "notes.txt",
        "pages/about.html",
        "posts/2024/05/01/hello-world.md",
        "travel/japan/kyoto.md",
    }
    assert {path for path, e in live.items() if e["draft"]} == {
        "drafts/unfinished-thoughts.md",  # in a drafts/ folder
        "notes.txt",  # Draft: yes
    }
    assert len({e["id"] for e in live.values()}) == len(live)
    hello = live["posts/2024/05/01/hello-world.md"]
    assert hello["title"] == "Hello, world"
    assert hello["tags"] == ["meta", "first"]
    assert datetime.fromisoformat(hello["date"]).date().isoformat() == "2024-05-01"
    assert live["2024-06-12-summer-plans.md"]["tags"] == ["travel", "plans"]
    assert live["pages/about.html"]["title"] == "About"


def test_directory_rename_is_moves_that_keep_inodes_and_entries(sample: Sample) -> None:
    sample.reconcile()
    old_inodes = inodes(sample.folder / "travel")
    old_entry = sample.live()["travel/japan/kyoto.md"]

    (sample.src / "travel").rename(sample.src / "trips")
    report = sample.reconcile()

    assert report["actions"]["move"] >= 1
    assert report["actions"]["set"] == 0 and report["actions"]["drop"] == 0
    assert report["errors"] == 0
    assert tree(sample.folder) == tree(sample.src)
    assert inodes(sample.folder / "trips") == old_inodes
    live = sample.live()
    assert "travel/japan/kyoto.md" not in live
    moved = live["trips/japan/kyoto.md"]
    assert moved["id"] == old_entry["id"]
    assert moved["created"] == old_entry["created"]
    assert moved["title"] == old_entry["title"]
    assert sample.reconcile()["actions"] == NO_ACTIONS


def test_renaming_the_drafts_folder_publishes_its_posts_under_the_same_id(sample: Sample) -> None:
    sample.reconcile()
    before = sample.live()["drafts/unfinished-thoughts.md"]
    assert before["draft"] is True
    (sample.src / "drafts").rename(sample.src / "published")
    report = sample.reconcile()
    assert report["actions"] == {"set": 0, "move": 1, "drop": 0}
    after = sample.live()["published/unfinished-thoughts.md"]
    assert after["id"] == before["id"] and after["created"] == before["created"]
    assert after["draft"] is False


def test_editing_a_file_is_one_set_and_updates_its_entry(sample: Sample) -> None:
    sample.reconcile()
    before = sample.live()["posts/2024/05/01/hello-world.md"]
    post = sample.src / "posts/2024/05/01/hello-world.md"
    post.write_text(post.read_text().replace("Title: Hello, world", "Title: Hello again"))
    _touch_later(post)
    report = sample.reconcile()
    assert report["actions"] == {"set": 1, "move": 0, "drop": 0}
    assert report["errors"] == 0
    assert (sample.folder / "posts/2024/05/01/hello-world.md").read_bytes() == post.read_bytes()
    after = sample.live()["posts/2024/05/01/hello-world.md"]
    assert after["id"] == before["id"] and after["created"] == before["created"]
    assert after["title"] == "Hello again"


def test_deleting_a_post_is_one_drop_and_its_entry_shows_deleted(sample: Sample) -> None:
    sample.reconcile()
    entry_id = sample.live()["pages/about.html"]["id"]
    (sample.src / "pages/about.html").unlink()
    report = sample.reconcile()
    assert report["actions"] == {"set": 0, "move": 0, "drop": 1}
    assert not (sample.folder / "pages/about.html").exists()
    entries = sample.entries()
    assert "pages/about.html" not in sample.live(entries)
    [entry] = [e for e in entries if e["path"] == "pages/about.html"]
    assert entry["deleted"] is True and entry["id"] == entry_id


def test_full_reconcile_repairs_drift_in_the_blog_folder(sample: Sample) -> None:
    sample.reconcile()
    folder = sample.folder
    (folder / "added-by-hand.md").write_text("Title: stray\n\nnot in the source\n")
    (folder / "notes.txt").write_text("edited by hand\n")
    (folder / "pages/about.html").unlink()

    sample.reconcile("--full")

    assert tree(folder) == tree(sample.src)
    live = sample.live()
    assert "added-by-hand.md" not in live
    assert live["notes.txt"]["title"] == "Plain text notes"
    assert sample.reconcile()["actions"] == NO_ACTIONS
    assert sample.reconcile("--full")["actions"] == NO_ACTIONS


def test_full_reconcile_retires_the_entry_of_a_post_deleted_everywhere(sample: Sample) -> None:
    sample.reconcile()
    (sample.folder / "pages/about.html").unlink()  # by hand, in the blog folder
    (sample.src / "pages/about.html").unlink()  # and by the author, in the source
    sample.reconcile("--full")
    assert tree(sample.folder) == tree(sample.src)
    assert "pages/about.html" not in sample.live()


def test_fixing_broken_md_builds_its_entry_and_clears_the_error(sample: Sample) -> None:
    sample.reconcile()
    assert "broken.md" not in sample.live()
    broken = sample.src / "broken.md"
    broken.write_text("foo: bar\nbaz: qux\n\nFixed.\n")
    _touch_later(broken)
    report = sample.reconcile()
    assert report["actions"] == {"set": 1, "move": 0, "drop": 0}
    assert report["errors"] == 0
    [item] = [f for f in sample.status()["files"] if f["path"] == "broken.md"]
    assert item == {"path": "broken.md", "state": "synced", "error": None}
    assert sample.live()["broken.md"]["title"] == "broken"


def test_a_rejected_post_edited_but_still_invalid_counts_one_error(sample: Sample) -> None:
    sample.reconcile()
    broken = sample.src / "broken.md"
    broken.write_text("foo: bar: baz\nstill not metadata\n")
    _touch_later(broken)
    report = sample.reconcile()
    assert report["actions"] == {"set": 1, "move": 0, "drop": 0}
    assert report["errors"] == 1
    [item] = [f for f in sample.status()["files"] if f["path"] == "broken.md"]
    assert item["state"] == "rejected" and BROKEN_MESSAGE in item["error"]


def test_ignored_names_are_not_copied_and_show_as_ignored(sample: Sample) -> None:
    (sample.src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (sample.src / "travel" / "~$lock.docx").write_bytes(b"lock")
    report = sample.reconcile()
    assert report["errors"] == 1  # broken.md only
    assert not (sample.folder / ".DS_Store").exists()
    assert not (sample.folder / "travel" / "~$lock.docx").exists()
    status = sample.status()
    states = {item["path"]: item["state"] for item in status["files"]}
    assert states[".DS_Store"] == "ignored"
    assert states["travel/~$lock.docx"] == "ignored"
    assert status["counts"]["ignored"] == 2
    assert sample.reconcile()["actions"] == NO_ACTIONS


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["reconcile", "--blog", "nosuchblog"],
        ["reconcile", "--blog", "nosuchblog", "--json"],
        ["status", "--blog", "nosuchblog", "--json"],
        ["entries", "--blog", "nosuchblog"],
        ["blog", "remove", "nosuchblog"],
    ],
)
def test_unknown_blog_fails_with_one_line_naming_it(cli: Cli, command: list[str]) -> None:
    message = cli.fails(*command)
    assert "nosuchblog" in message


def test_missing_source_folder_fails_with_one_line_naming_it(sample: Sample) -> None:
    sample.reconcile()
    shutil.rmtree(sample.src)
    proc = sample.cli.run("reconcile", "--blog", sample.blog, "--json", ok=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(sample.src) in lines[0]
    # Nothing in the blog folder is touched, and the blog shows the error.
    assert (sample.folder / "notes.txt").exists()
    [record] = sample.cli.json("blog", "list")
    assert record["status"] == "error" and str(sample.src) in record["status_message"]


def test_adding_a_blog_twice_is_an_error(sample: Sample) -> None:
    message = sample.cli.fails("blog", "add", sample.blog, "--source", f"local:{sample.src}")
    assert sample.blog in message and "exists" in message
    assert len(sample.cli.json("blog", "list")) == 1


def test_a_relative_source_is_stored_as_an_absolute_path(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "work" / "site")
    cli.run("blog", "add", "rel", "--source", "local:site", cwd=tmp_path / "work")
    [record] = cli.json("blog", "list")
    assert record["source"] == f"local:{(tmp_path / 'work' / 'site').resolve()}"


@pytest.mark.parametrize("blog_id", ["a/b", ".", ".."])
def test_a_blog_id_with_a_slash_or_dots_is_refused(cli: Cli, tmp_path: Path, blog_id: str) -> None:
    cli.fails("blog", "add", blog_id, "--source", f"local:{EXAMPLES}")
    assert cli.json("blog", "list") == []


@pytest.mark.parametrize(
    ("source", "complaint"),
    [("local:{missing}", "does not exist"), ("ftp:/x", "unknown source kind"), ("nocolon", "")],
)
def test_adding_a_blog_with_a_bad_source_is_an_error(
    cli: Cli, tmp_path: Path, source: str, complaint: str
) -> None:
    message = cli.fails("blog", "add", "b", "--source", source.format(missing=tmp_path / "nope"))
    assert complaint in message
    assert cli.json("blog", "list") == []


# -- blogs ----------------------------------------------------------------------------------------


def test_blog_list_json(cli: Cli, tmp_path: Path) -> None:
    assert cli.json("blog", "list") == []
    sample = Sample(cli, tmp_path)
    [fresh] = cli.json("blog", "list")
    assert set(fresh) == BLOG_KEYS
    assert fresh["id"] == "demo"
    assert fresh["source"] == f"local:{sample.src}"
    assert fresh["folder"] == str(sample.folder)
    assert fresh["status"] == "new" and fresh["last_pass_at"] is None
    sample.reconcile()
    [done] = cli.json("blog", "list")
    assert done["status"] == "ok" and done["last_pass_result"] == "ok"
    assert done["status_message"] is None
    datetime.fromisoformat(done["last_pass_at"])
    assert isinstance(done["last_pass_seconds"], float)


def test_blog_folder_defaults_to_the_blogs_dir(tmp_path: Path) -> None:
    blogs = tmp_path / "blogs-here"
    cli = Cli(controller_env(tmp_path, CONTROLLER_BLOGS_DIR=str(blogs)))
    shutil.copytree(EXAMPLES, tmp_path / "src")
    cli.run("blog", "add", "mine", "--source", f"local:{tmp_path / 'src'}")
    [record] = cli.json("blog", "list")
    assert record["folder"] == str(blogs / "mine")
    cli.run("reconcile", "--blog", "mine")
    assert tree(blogs / "mine") == tree(tmp_path / "src")


def test_blog_remove_keeps_the_folder(sample: Sample) -> None:
    sample.reconcile()
    sample.cli.run("blog", "remove", sample.blog)
    assert sample.cli.json("blog", "list") == []
    assert tree(sample.folder) == tree(sample.src)
    assert sample.blog in sample.cli.fails("status", "--blog", sample.blog)


def test_blog_remove_delete_folder_deletes_it(sample: Sample) -> None:
    sample.reconcile()
    sample.cli.run("blog", "remove", sample.blog, "--delete-folder")
    assert sample.cli.json("blog", "list") == []
    assert not sample.folder.exists()
    assert sample.src.is_dir()  # the source is never touched


def test_a_removed_blog_can_be_added_again_and_starts_afresh(sample: Sample) -> None:
    sample.reconcile()
    sample.cli.run("blog", "remove", sample.blog, "--delete-folder")
    sample.add()
    report = sample.reconcile()
    assert report["actions"]["set"] == len(files_of(sample.src))
    assert len(sample.live()) == 6


# -- help and the database --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["blog"],
        ["blog", "add"],
        ["blog", "list"],
        ["blog", "remove"],
        ["reconcile"],
        ["status"],
        ["entries"],
        ["db"],
        ["db", "upgrade"],
    ],
    ids=lambda c: " ".join(c) or "controller",
)
def test_help_works_on_every_command(cli: Cli, command: list[str]) -> None:
    proc = cli.run(*command, "--help")
    assert proc.stdout.startswith("Usage: controller")
    assert proc.stderr == ""
    # Help never opens (or creates) the store.
    assert not (Path(cli.env["CONTROLLER_DATA_DIR"]) / "controller.db").exists()


def test_python_dash_m_controller_help(cli: Cli) -> None:
    proc = cli.run("--help", command=[sys.executable, "-m", "controller"])
    assert "Usage:" in proc.stdout
    for command in ("blog", "reconcile", "status", "entries", "db"):
        assert command in proc.stdout


def test_db_upgrade_on_a_fresh_sqlite_url(tmp_path: Path) -> None:
    from controller.store.engine import current_revision, head_revision, make_engine

    url = f"sqlite:///{tmp_path / 'fresh' / 'store.db'}"
    cli = Cli(controller_env(tmp_path, CONTROLLER_DATABASE_URL=url))
    proc = cli.run("db", "upgrade")
    assert "up to date" in proc.stdout
    assert (tmp_path / "fresh" / "store.db").is_file()
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    # Upgrading again is a no-op, and the URL (not the data dir) is the store.
    cli.run("db", "upgrade")
    assert cli.json("blog", "list") == []
    assert not (tmp_path / "data" / "controller.db").exists()


def test_cli_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    cli = Cli(controller_env(tmp_path, CONTROLLER_DATABASE_URL=postgres_url))
    cli.run("db", "upgrade")
    blog = f"cli-{os.getpid()}"
    sample = Sample(cli, tmp_path, blog=blog)
    try:
        report = sample.reconcile()
        assert report["actions"] == {"set": len(files_of(sample.src)), "move": 0, "drop": 0}
        assert report["errors"] == 1
        assert sample.reconcile()["actions"] == NO_ACTIONS
        assert tree(sample.folder) == tree(sample.src)
        assert sample.status()["counts"] == {"synced": 7, "rejected": 1}
        (sample.src / "travel").rename(sample.src / "trips")
        kyoto = sample.live()["travel/japan/kyoto.md"]
        report = sample.reconcile()
        assert report["actions"]["move"] >= 1 and report["actions"]["set"] == 0
        assert sample.live()["trips/japan/kyoto.md"]["id"] == kyoto["id"]
        assert any(b["id"] == blog for b in cli.json("blog", "list"))
    finally:
        cli.run("blog", "remove", blog, ok=False)
    assert not (tmp_path / "data" / "controller.db").exists()
