"""A folder on this machine as a source (``local:PATH``).

Typically a folder the Dropbox desktop client or a git checkout keeps up to
date. Every pass walks the folder with ``stat`` only; a file is read (and
hashed) only when its (inode, size, mtime_ns) differs from what the stored
remote tree recorded, so an unchanged blog costs one walk and no reads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from reconcilers.core.tree import Kind, Node, normalise_name, normalise_path, safe_key
from reconcilers.errors import FetchError, InvalidPath, SourceError, SourceGone
from reconcilers.hashing import hash_file
from reconcilers.sources.base import Observation, Sink
from reconcilers.sources.names import is_ignored_name

CHUNK = 1024 * 1024


def _normal_or_none(name: str) -> str | None:
    try:
        return normalise_name(name)
    except InvalidPath:
        return None


def _stat_rev(st: os.stat_result) -> str:
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class LocalSource:
    kind = "local"
    #: Reads from a local disk overlap well on a few threads, not more.
    concurrency = 4

    def __init__(self, root: str | Path, *, blog_id: str | None = None) -> None:
        self.root = Path(root)
        self.blog_id = blog_id
        self._root = str(self.root)
        self._real_root = os.path.realpath(self.root)
        self._raw: dict[str, str] = {}

    def describe(self) -> str:
        return f"local:{self.root}"

    # -- observing ---------------------------------------------------------

    def listing(self, known: Mapping[str, Node]) -> dict[str, Node]:
        """The whole tree, re-hashing only files whose stat changed since ``known``."""
        if not self.root.is_dir():
            raise SourceGone(f"source folder {self.root} does not exist", blog_id=self.blog_id)
        nodes: dict[str, Node] = {}
        self._raw = {}
        self._walk(str(self.root), "", "", known, nodes)
        return nodes

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Iterator[Observation]:
        """One page: a walk has no cursor to resume from."""
        current = self.listing(known)
        upserts = tuple(
            n for p, n in current.items() if (old := known.get(p)) is not n and old != n
        )
        deletes = tuple(p for p in known if p not in current)
        yield Observation(upserts=upserts, deletes=deletes, cursor=None)

    def changes_at(self, paths: Iterable[str], known: Mapping[str, Node]) -> Observation | None:
        """Re-observe only ``paths`` and what lies under them (a watched folder's edit).

        ``known`` must hold exactly the stored nodes at, under and above those
        paths (a store ``Region``). None when only a walk of the whole folder
        can tell: a name not in normal form or sharing its normal form with a
        sibling, a symlink, a folder above that is gone.
        """
        if not self.root.is_dir():
            raise SourceGone(f"source folder {self.root} does not exist", blog_id=self.blog_id)
        self._raw = {}
        wanted = set(paths)
        current: dict[str, Node] = {}
        above: set[str] = set()
        for path in sorted(wanted):
            parts = path.split("/")
            above.update("/".join(parts[:i]) for i in range(1, len(parts)))
            if not self._observe_one(path, parts, known, current):
                return None
        # Folders above stay as they are; one that is gone must have its own event.
        standing = {p for p in above - current.keys() if os.path.isdir(self._on_disk(p))}
        if any(p not in wanted for p in above - current.keys() - standing):
            return None
        if any((node := known.get(p)) is None or node.kind is not Kind.DIR for p in standing):
            return None  # a folder above that the store does not know as one: walk
        upserts = tuple(
            n for p, n in current.items() if (old := known.get(p)) is not n and old != n
        )
        deletes = tuple(p for p in known if p not in current and p not in standing)
        return Observation(upserts=upserts, deletes=deletes, cursor=None)

    def _on_disk(self, path: str) -> str:
        return os.path.join(self._root, *path.split("/"))

    def _observe_one(
        self, path: str, parts: list[str], known: Mapping[str, Node], out: dict[str, Node]
    ) -> bool:
        """Observe ``path`` into ``out``; False when it needs a whole walk."""
        if path in out:
            return True  # under a folder observed already
        try:
            if normalise_path(path) != path:
                return False
        except InvalidPath:
            return False
        full = self._on_disk(path)
        try:
            siblings = os.listdir(os.path.dirname(full))
        except FileNotFoundError:
            return True  # its folder is gone too: a delete (the folder's own event says so)
        except OSError:
            return False
        name = parts[-1]
        if sum(1 for s in siblings if _normal_or_none(s) == name) > 1:
            return False
        if name not in siblings:
            return True  # gone: the caller turns what ``known`` holds here into deletes
        if is_ignored_name(name):
            out[path] = Node(path, Kind.DIR if os.path.isdir(full) else Kind.FILE, ignored=True)
            return True
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return True
        except OSError as exc:
            out[path] = Node(path, Kind.FILE, problem=f"cannot stat: {exc.strerror}")
            return True
        if stat.S_ISLNK(st.st_mode):
            return False
        if stat.S_ISDIR(st.st_mode):
            out[path] = Node(path, Kind.DIR)
            self._walk(full, path, path, known, out)
        elif stat.S_ISREG(st.st_mode):
            out[path] = self._file_node(full, path, st, known.get(path))
        else:
            out[path] = Node(path, Kind.FILE, ignored=True)
        return True

    def _walk(
        self,
        directory: str,
        prefix: str,
        raw_prefix: str,
        known: Mapping[str, Node],
        out: dict[str, Node],
    ) -> None:
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            raise SourceError(
                f"cannot list {directory}: {exc.strerror}", blog_id=self.blog_id
            ) from exc
        for entry in entries:
            raw = f"{raw_prefix}/{entry.name}" if raw_prefix else entry.name
            try:
                name = normalise_name(entry.name)
                key = f"{prefix}/{name}" if prefix else name
            except InvalidPath as exc:
                key = safe_key(raw)
                out[key] = Node(key, Kind.FILE, problem=exc.message)
                continue
            if key != raw:
                self._raw[key] = raw
            if key in out:
                out[key] = Node(key, Kind.FILE, problem="two names in the source normalise to it")
                continue
            if is_ignored_name(entry.name):
                out[key] = Node(key, Kind.DIR if entry.is_dir() else Kind.FILE, ignored=True)
                continue
            try:
                st = self._stat(entry)
            except OSError as exc:
                out[key] = Node(key, Kind.FILE, problem=f"cannot stat: {exc.strerror}")
                continue
            if isinstance(st, str):
                out[key] = Node(key, Kind.FILE, problem=st)
            elif stat.S_ISDIR(st.st_mode):
                out[key] = Node(key, Kind.DIR)
                self._walk(entry.path, key, raw, known, out)
            elif stat.S_ISREG(st.st_mode):
                out[key] = self._file_node(entry.path, key, st, known.get(key))
            else:
                out[key] = Node(key, Kind.FILE, ignored=True)

    def _stat(self, entry: os.DirEntry[str]) -> os.stat_result | str:
        """The entry's stat, following a symlink only when it stays inside the source."""
        if not entry.is_symlink():
            return entry.stat(follow_symlinks=False)
        target = os.path.realpath(entry.path)
        if os.path.commonpath([target, self._real_root]) != self._real_root:
            return "symlink points outside the source folder"
        if not os.path.exists(target):
            return "symlink target does not exist"
        if os.path.isdir(target):
            return "symlink to a directory is not followed"
        return os.stat(target)

    def _file_node(self, path: str, key: str, st: os.stat_result, old: Node | None) -> Node:
        rev = _stat_rev(st)
        if old is not None and old.rev == rev and old.content_hash is not None:
            return old
        try:
            digest, size = hash_file(path)
        except OSError as exc:
            return Node(key, Kind.FILE, rev=rev, problem=f"cannot read: {exc.strerror}")
        return Node(
            key, Kind.FILE, size=size, mtime_ns=st.st_mtime_ns, content_hash=digest, rev=rev
        )

    # -- fetching ----------------------------------------------------------

    def fetch(self, node: Node, into: Sink) -> None:
        try:
            with open(
                os.path.join(self._root, self._raw.get(node.path, node.path)), "rb"
            ) as handle:
                while chunk := handle.read(CHUNK):
                    into.write(chunk)
        except OSError as exc:
            raise FetchError(
                f"cannot read from the source: {exc.strerror}", blog_id=self.blog_id, path=node.path
            ) from exc
