"""``blog add --source git:PATH_OR_URL[#BRANCH]``, the mirror directory, and hook lines.

A local repository (bare or with a working tree) is read in place; a URL
(``file://``, ``ssh://``, ``https://``, ``user@host:path``) is mirrored as a
bare clone under the data directory and fetched at the start of every pass.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from controller.errors import BlogExists, ConfigError
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.sources.git import GitSource

URL_PREFIXES = ("file://", "ssh://", "https://", "http://", "git://")
#: Settings a hook needs to reach the same store as the controller that printed it.
HOOK_SETTINGS = ("CONTROLLER_DATA_DIR", "CONTROLLER_DATABASE_URL", "CONTROLLER_REDIS_URL")


def parse_location(location: str) -> tuple[str, str | None]:
    """``PATH_OR_URL[#BRANCH]`` -> (where, branch or None)."""
    where, sep, branch = location.rpartition("#")
    if not sep:
        return location, None
    if not branch or not where:
        raise ConfigError(f"expected git:PATH_OR_URL#BRANCH, got git:{location}")
    return where, branch


def is_url(where: str) -> bool:
    if where.startswith(URL_PREFIXES):
        return True
    head = where.split("/", 1)[0]
    return ":" in head and "@" in head  # scp-like user@host:path


def _run(args: list[str], blog_id: str) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ConfigError(f"git failed: {lines[-1] if lines else done.returncode}", blog_id=blog_id)
    return done.stdout.strip()


def mirror_dir(settings: Settings, blog_id: str) -> Path:
    return settings.data_dir / "git" / f"{blog_id}.git"


def connect_blog(
    settings: Settings, store: Store, *, blog_id: str, location: str, folder: str
) -> BlogRecord:
    """Check the repository and branch, mirror a URL, store the blog."""
    if shutil.which("git") is None:
        raise ConfigError("git is not installed (needed for git: sources)", blog_id=blog_id)
    if any(b.id == blog_id for b in store.list_blogs()):
        raise BlogExists("a blog with this id already exists", blog_id=blog_id)
    where, branch = parse_location(location)
    config: dict[str, Any] = {"location": location, "branch": branch}
    if is_url(where):
        target = mirror_dir(settings, blog_id)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _run(["git", "clone", "--mirror", "--quiet", where, str(target)], blog_id)
        config.update(git_dir=str(target), url=where)
    else:
        path = Path(where).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"repository {path} does not exist", blog_id=blog_id)
        git_dir = _run(["git", "-C", str(path), "rev-parse", "--absolute-git-dir"], blog_id)
        config.update(git_dir=git_dir)
    source = open_git_source(BlogRecord(blog_id, "git", config, folder))
    source.head()  # the branch must exist now, not at the first pass
    return store.add_blog(
        BlogRecord(id=blog_id, source_kind="git", source_config=config, folder=folder)
    )


def open_git_source(blog: BlogRecord) -> GitSource:
    config = blog.source_config
    return GitSource(
        config["git_dir"], config.get("branch"), blog_id=blog.id, mirror_of=config.get("url")
    )


def hook_lines(store: Store, repository: str) -> list[str]:
    """Shell lines for a ``post-receive`` hook in ``repository``: enqueue its blogs."""
    wanted = {os.path.realpath(repository), os.path.realpath(os.path.join(repository, ".git"))}
    blogs = []
    for blog in store.list_blogs():
        if blog.source_kind != "git":
            continue
        config = blog.source_config
        url = config.get("url") or ""
        local = url.removeprefix("file://") if url.startswith("file://") else None
        candidates = {os.path.realpath(config["git_dir"])} if not url else set()
        if local is not None:
            candidates.add(os.path.realpath(local))
        if candidates & wanted:
            blogs.append(blog.id)
    executable = shlex.quote(os.path.realpath(sys.argv[0]))
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in HOOK_SETTINGS if k in os.environ)
    prefix = f"{env} " if env else ""
    return [
        f"{prefix}{executable} reconcile --enqueue --blog {shlex.quote(b)} >/dev/null"
        for b in blogs
    ]
