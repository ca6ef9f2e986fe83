"""Git blogs through the ``controller`` executable: adding, reconciling, the post-receive hook."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from support import Cli, controller_env, tree
from test_git_source import POST, Repo, git, head_tree


def test_a_push_runs_the_hook_that_enqueues_the_blog(tmp_path: Path) -> None:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    repo = Repo(tmp_path / "author")
    repo.write("hello.md", POST.format(title="Hello"))
    repo.commit("first")
    git(repo.path, "remote", "add", "origin", str(bare))
    git(repo.path, "push", "-q", "origin", "main")
    cli = Cli(controller_env(tmp_path, CONTROLLER_BLOGS_DIR=str(tmp_path / "blogs")))
    cli.run("blog", "add", "b", "--source", f"git:file://{bare}")
    report = json.loads(cli.run("reconcile", "--blog", "b", "--json").stdout)
    assert report["actions"]["set"] == 1

    lines = cli.run("git", "hook-path", str(bare)).stdout.strip().splitlines()
    assert len(lines) == 1 and "reconcile --enqueue --blog b" in lines[0]
    hook = bare / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)

    repo.write("second.md", POST.format(title="Second"))
    repo.commit("second")
    env = {**os.environ, **{k: v for k, v in cli.env.items() if k.startswith("CONTROLLER_")}}
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo.path, env=env, check=True)
    [blog] = json.loads(cli.run("blog", "list", "--json").stdout)
    assert blog["generation"] == 1, "the hook did not enqueue the blog"
    cli.run("reconcile", "--blog", "b")
    assert tree(tmp_path / "blogs" / "b") == head_tree(bare)


def test_hook_path_for_a_repository_no_blog_follows_is_an_error(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "author")
    repo.commit("empty")
    cli = Cli(controller_env(tmp_path))
    message = cli.fails("git", "hook-path", str(repo.path))
    assert message == f"error: no blog follows the repository {repo.path}"


def test_adding_a_missing_repository_or_branch_fails_with_the_reason(tmp_path: Path) -> None:
    cli = Cli(controller_env(tmp_path))
    missing = cli.fails("blog", "add", "b", "--source", f"git:{tmp_path / 'nope'}")
    assert missing == f"error: blog b: repository {tmp_path / 'nope'} does not exist"
    repo = Repo(tmp_path / "author")
    repo.commit("empty")
    branch = cli.fails("blog", "add", "b", "--source", f"git:{repo.path}#drafts")
    assert "branch 'drafts' does not exist" in branch
