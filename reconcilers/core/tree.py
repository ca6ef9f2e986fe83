"""Nodes and trees: the vocabulary shared by sources, planner, store and executor.

A tree is a mapping from a *key* (a normalised path: NFC, ``/``-separated, no
leading slash) to a :class:`Node`. Paths are normalised once, at the edge where
a source reports them; everything inside the core compares keys only.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from reconcilers.errors import InvalidPath

MAX_NAME_BYTES = 255

#: Names the executor gives its temporary files and move stand-ins. Sources
#: report such names as ignored, so a crash's leftovers are never mirrored and
#: the next pass can remove them.
TEMP_PREFIX = ".~ctl-"


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"


#: The members as plain names: on Python 3.11 ``Kind.FILE`` is a descriptor
#: lookup (about 100 ns), which shows in loops over 100,000-node batches.
FILE, DIR = Kind.FILE, Kind.DIR


@dataclass(frozen=True, slots=True)
class Node:
    """One file or directory as a source or the synced tree sees it.

    ``content_hash`` is Dropbox's content hash (hex) for files; ``rev`` is the
    source's revision string and ``id`` its stable identity, when it has them.
    ``mtime_ns`` is the source's modification time, installed as the local mtime.
    ``ignored`` nodes are recorded (and shown) but never mirrored; a node with
    a ``problem`` (a hostile or impossible path) is recorded as rejected.
    ``display`` is the source's own spelling of the path when the key is a
    folded form of it (Dropbox keys are ``path_lower``); it is never compared.
    """

    path: str
    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    content_hash: str | None = None
    rev: str | None = None
    id: str | None = None
    ignored: bool = False
    problem: str | None = None
    display: str | None = field(default=None, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.kind is Kind.DIR


Tree = Mapping[str, Node]


def parent_of(path: str) -> str:
    """The parent key of ``path``; the blog root is ``""``."""
    head, _, _ = path.rpartition("/")
    return head


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def ancestors(path: str) -> Iterator[str]:
    """Every proper ancestor of ``path``, nearest first, excluding the root."""
    parent = parent_of(path)
    while parent:
        yield parent
        parent = parent_of(parent)


def is_within(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` itself or lies below it."""
    return path == root or path.startswith(root + "/")


def relocate(path: str, dir_moves: Mapping[str, str]) -> str:
    """Where ``path`` ends up when the deepest directory move at or above it applies."""
    if not dir_moves:
        return path
    probe = path
    while probe:
        target = dir_moves.get(probe)
        if target is not None:
            return target + path[len(probe) :]
        probe = parent_of(probe)
    return path


def is_temporary(path: str) -> bool:
    return name_of(path).startswith(TEMP_PREFIX)


def depth(path: str) -> int:
    return path.count("/")


def normalise_name(raw: str) -> str:
    """One path component as a key part, or raise :class:`InvalidPath`."""
    if "\x00" in raw:
        raise InvalidPath("name contains a NUL byte", path=safe_key(raw))
    name = raw if raw.isascii() else unicodedata.normalize("NFC", raw)
    if name in ("", ".", "..") or "/" in name:
        raise InvalidPath(f"name {raw!r} is empty, '.', '..' or contains '/'", path=raw)
    if len(name) * 4 > MAX_NAME_BYTES and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidPath(f"name is longer than {MAX_NAME_BYTES} bytes", path=raw)
    return name


def normalise_path(raw: str) -> str:
    """Turn a source's path into a key, or raise :class:`InvalidPath`.

    The key is what makes a path safe to join onto the blog folder: no
    component may climb out (``..``), be empty, carry a NUL byte or exceed the
    255-byte name limit of common file systems; absolute paths are refused
    rather than silently re-rooted, because a source that emits them is broken.
    """
    if "\x00" in raw:
        raise InvalidPath("path contains a NUL byte", path=safe_key(raw))
    if raw.startswith("/"):
        raise InvalidPath("path is absolute", path=raw)
    try:
        return "/".join(normalise_name(part) for part in raw.split("/"))
    except InvalidPath as exc:
        raise InvalidPath(f"path has an invalid component: {exc.message}", path=raw) from None


def key_or_problem(raw: str) -> tuple[str, str | None]:
    """The key for a source's relative path, or a printable key and what is wrong.

    For sources that report whole paths (Dropbox, git): a bad component makes
    that one path a rejected row instead of an error for the whole listing.
    """
    try:
        return "/".join(normalise_name(part) for part in raw.split("/")), None
    except InvalidPath as exc:
        return safe_key(raw), f"path has an invalid component: {exc.message}"


def safe_key(raw: str) -> str:
    """A printable key for a path that failed :func:`normalise_path` (for error rows)."""
    return raw.replace("\x00", "\\x00")
