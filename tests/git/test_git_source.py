"""Git blogs on real repositories made by the tests, reconciled through the library API.

Every scenario ends with the blog folder byte-identical to the branch head's
tree (regular files and directories; symlinks and submodules are ignored)
and a second pass that does nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import tree

from controller.git.connect import connect_blog
from controller.reconcile import PassReport, Reconciler
from controller.settings import Settings
from controller.store import Store
from reconcilers.core.machine import State
from reconcilers.errors import ControllerError

POST = "Title: {title}\n\nBody of {title}.\n"
INVALID = "foo: bar: baz\nxyz\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
            "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
        },
    )
    return done.stdout.strip()


class Repo:
    """A working repository (the author's) with helpers to change and commit."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", branch)
        git(path, "config", "user.email", "author@example.com")
        git(path, "config", "user.name", "Author")
        git(path, "config", "protocol.file.allow", "always")

    def write(self, rel: str, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str = "change") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


def head_tree(git_dir: Path | str, ref: str = "HEAD") -> dict[str, bytes | None]:
    """What the blog folder must hold: the tree's directories and regular files."""
    listing = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-t", "-z", "--full-tree", ref],
        capture_output=True,
        check=True,
    ).stdout
    expected: dict[str, bytes | None] = {}
    for record in filter(None, listing.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        mode, _, oid = meta.decode().split()
        if mode == "040000":
            expected[path.decode()] = None
        elif mode in ("100644", "100755"):
            expected[path.decode()] = subprocess.run(
                ["git", f"--git-dir={git_dir}", "cat-file", "blob", oid],
                capture_output=True,
                check=True,
            ).stdout
    return dict(sorted(expected.items()))


@dataclass
class GitBlog:
    repo: Repo
    store: Store
    reconciler: Reconciler
    folder: Path
    git_dir: str

    def reconcile(self) -> PassReport:
        return self.reconciler.reconcile("b")

    def states(self) -> dict[str, State]:
        return {p: r.state for p, r in self.store.load_synced("b").items()}

    def entry_ids(self) -> dict[str, str]:
        return {e.path: e.id for e in self.store.entries("b") if not e.deleted}

    def assert_converged(self, ref: str = "HEAD") -> None:
        assert tree(self.folder) == head_tree(self.git_dir, ref)
        stamps = {p: p.stat().st_ino for p in self.folder.rglob("*")}
        again = self.reconcile()
        assert again.actions == {"set": 0, "move": 0, "drop": 0} and again.passes == 1
        assert {p: p.stat().st_ino for p in self.folder.rglob("*")} == stamps


def _connect(tmp_path: Path, location: str, repo: Repo) -> Iterator[GitBlog]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    store = Store(settings.effective_database_url, auto_upgrade=True)
    folder = tmp_path / "blog"
    record = connect_blog(settings, store, blog_id="b", location=location, folder=str(folder))
    reconciler = Reconciler(store, settings)
    yield GitBlog(repo, store, reconciler, folder, record.source_config["git_dir"])
    reconciler.close()
    store.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[GitBlog]:
    repo = Repo(tmp_path / "author")
    repo.write("posts/hello.md", POST.format(title="Hello"))
    repo.write("about.md", POST.format(title="About"))
    repo.write("img/logo.bin", "\x00\x01binary\n")
    repo.commit("first")
    yield from _connect(tmp_path, str(repo.path), repo)


def test_a_local_repository_is_mirrored_from_its_head_tree(local: GitBlog) -> None:
    report = local.reconcile()
    assert report.actions["set"] == 3 and report.errors == 0
    assert set(local.entry_ids()) == {"posts/hello.md", "about.md"}
    assert local.store.get_blog("b").cursor == git(local.repo.path, "rev-parse", "HEAD")
    local.assert_converged()


def test_adds_edits_and_deletes_apply_only_what_the_commit_changed(local: GitBlog) -> None:
    local.reconcile()
    local.repo.write("about.md", POST.format(title="About us"))
    local.repo.write("posts/new.md", POST.format(title="New"))
    (local.repo.path / "img" / "logo.bin").unlink()
    local.repo.commit("second")
    report = local.reconcile()
    assert report.actions == {"set": 2, "move": 0, "drop": 2}  # logo.bin and the empty img/
    assert {e.path: e.title for e in local.store.entries("b") if not e.deleted}[
        "about.md"
    ] == "About us"
    local.assert_converged()


def test_file_and_directory_renames_are_moves_that_keep_inodes_and_entry_ids(
    local: GitBlog,
) -> None:
    local.reconcile()
    ids = local.entry_ids()
    inode = (local.folder / "posts" / "hello.md").stat().st_ino
    git(local.repo.path, "mv", "posts", "articles")
    git(local.repo.path, "mv", "about.md", "articles/about-us.md")
    local.repo.commit("renames")
    report = local.reconcile()
    assert report.actions["set"] == 0 and report.actions["move"] == 2
    assert (local.folder / "articles" / "hello.md").stat().st_ino == inode
    after = local.entry_ids()
    assert after["articles/hello.md"] == ids["posts/hello.md"]
    assert after["articles/about-us.md"] == ids["about.md"]
    local.assert_converged()


def test_one_invalid_post_in_a_push_is_rejected_and_the_rest_applied(local: GitBlog) -> None:
    local.reconcile()
    for n in range(5):
        local.repo.write(f"posts/p{n}.md", POST.format(title=f"P{n}"))
    local.repo.write("posts/broken.md", INVALID)
    local.repo.commit("a push with one bad post")
    report = local.reconcile()
    assert report.errors == 1 and report.actions["set"] == 6
    assert report.failures == [
        ("posts/broken.md", "Invalid metadata on line 2: expected 'Key: value'")
    ]
    states = local.states()
    assert states["posts/broken.md"] is State.REJECTED
    assert all(states[f"posts/p{n}.md"] is State.SYNCED for n in range(5))
    local.assert_converged()


def test_symlinks_and_submodules_are_ignored_never_followed(local: GitBlog, tmp_path: Path) -> None:
    sub = Repo(tmp_path / "theme")
    sub.write("style.css", "body {}\n")
    sub.commit("theme")
    git(
        local.repo.path,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(sub.path),
        "theme",
    )
    os.symlink("/etc/passwd", local.repo.path / "passwd.md")
    os.symlink("posts/hello.md", local.repo.path / "link.md")
    local.repo.commit("a submodule and symlinks")
    local.reconcile()
    states = local.states()
    assert states["theme"] is State.IGNORED and states["passwd.md"] is State.IGNORED
    assert states["link.md"] is State.IGNORED
    assert not (local.folder / "passwd.md").exists() and not (local.folder / "theme").exists()
    assert (local.folder / ".gitmodules").is_file()
    local.assert_converged()


def test_a_branch_other_than_head_is_followed(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "author")
    repo.write("main.md", POST.format(title="Main"))
    repo.commit("main")
    git(repo.path, "checkout", "-q", "-b", "published")
    repo.write("published.md", POST.format(title="Published"))
    repo.commit("published")
    git(repo.path, "checkout", "-q", "main")
    for blog in _connect(tmp_path, f"{repo.path}#published", repo):
        blog.reconcile()
        assert (blog.folder / "published.md").exists()
        blog.assert_converged("published")


def test_an_unknown_branch_is_refused_when_the_blog_is_added(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "author")
    repo.commit("empty")
    with pytest.raises(ControllerError, match="branch 'nope' does not exist"):
        next(_connect(tmp_path, f"{repo.path}#nope", repo))


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[GitBlog]:
    """A bare repository the author pushes to, followed through a file:// URL mirror."""
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    repo = Repo(tmp_path / "author")
    repo.write("posts/hello.md", POST.format(title="Hello"))
    repo.commit("first")
    git(repo.path, "remote", "add", "origin", str(bare))
    git(repo.path, "push", "-q", "origin", "main")
    yield from _connect(tmp_path, f"file://{bare}", repo)


def test_a_file_url_is_mirrored_in_the_data_directory_and_fetched_each_pass(
    remote: GitBlog, tmp_path: Path
) -> None:
    assert remote.git_dir == str(tmp_path / "data" / "git" / "b.git")
    remote.reconcile()
    remote.repo.write("posts/pushed.md", POST.format(title="Pushed"))
    remote.repo.commit("second")
    git(remote.repo.path, "push", "-q", "origin", "main")
    remote.reconcile()
    assert (remote.folder / "posts" / "pushed.md").exists()
    remote.assert_converged()


def test_a_force_push_that_rewrites_history_falls_back_to_comparing_trees(
    remote: GitBlog, tmp_path: Path
) -> None:
    remote.repo.write("posts/doomed.md", POST.format(title="Doomed"))
    remote.repo.commit("to be rewritten")
    git(remote.repo.path, "push", "-q", "origin", "main")
    remote.reconcile()
    git(remote.repo.path, "reset", "-q", "--hard", "HEAD~1")
    remote.repo.write("posts/instead.md", POST.format(title="Instead"))
    remote.repo.commit("rewritten")
    git(remote.repo.path, "push", "-q", "--force", "origin", "main")
    git(Path(remote.git_dir), "fetch", "-q", "--prune", "--force", "origin")
    for where in (tmp_path / "server.git", Path(remote.git_dir)):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    old = remote.store.get_blog("b").cursor
    assert (
        subprocess.run(
            ["git", f"--git-dir={remote.git_dir}", "cat-file", "-e", f"{old}^{{commit}}"],
            capture_output=True,
        ).returncode
        != 0
    ), "the stored commit should be gone"
    report = remote.reconcile()
    assert report.actions == {"set": 1, "move": 0, "drop": 1}
    remote.assert_converged()
