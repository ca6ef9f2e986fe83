"""A git repository's branch head as a source (``git:PATH_OR_URL[#BRANCH]``).

The desired tree is the tree of the branch head; the cursor is the commit
last reconciled. From that commit to the new head the changed paths come from
``git diff-tree`` (a tree diff, not a listing), so a push costs what it
changed; a first pass, or a stored commit that vanished (a force-push and a
gc), compares the head's full tree (``ls-tree``) with the stored one instead.
Content is read from the object store (``cat-file``): no checkout, no working
tree touched, every file verified against its blob id. Renames are not
guessed here: an exact rename is the same content at a new path, which the
rename library pairs by content hash.

Symlinks are never followed or mirrored: they show as ``ignored``, as do
submodules (gitlinks). Everything runs ``git`` with argument lists and
``-z`` outputs; no shell, no path quoting.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from reconcilers.core.tree import Kind, Node, key_or_problem
from reconcilers.errors import FetchError, SourceError, SourceGone
from reconcilers.hashing import ContentHasher
from reconcilers.sources.base import Observation, Sink
from reconcilers.sources.names import is_ignored_name

CHUNK = 256 * 1024
_TREE, _SYMLINK, _GITLINK = "040000", "120000", "160000"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One path of a tree: its mode and object id (``None``: gone)."""

    mode: str
    oid: str
    size: int = 0


class GitSource:
    kind = "git"
    concurrency = 4

    def __init__(
        self,
        git_dir: str,
        branch: str | None = None,
        *,
        blog_id: str | None = None,
        mirror_of: str | None = None,
    ) -> None:
        self.git_dir = git_dir
        self.branch = branch
        self.blog_id = blog_id
        #: When set, ``git_dir`` is a bare mirror of this URL, fetched every pass.
        self.mirror_of = mirror_of
        self._format: str | None = None

    def describe(self) -> str:
        where = self.mirror_of or self.git_dir
        return f"git:{where}#{self.branch or 'HEAD'}"

    # -- running git ------------------------------------------------------------------

    def _git(self, *args: str, check: bool = True) -> bytes:
        try:
            done = subprocess.run(
                ["git", f"--git-dir={self.git_dir}", *args],
                capture_output=True,
                check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
            )
        except OSError as exc:
            raise SourceError(f"cannot run git: {exc.strerror}", blog_id=self.blog_id) from exc
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(
                f"git {args[0]} failed: {message[-1] if message else done.returncode}",
                blog_id=self.blog_id,
            )
        return done.stdout

    def _object_format(self) -> str:
        if self._format is None:
            out = self._git("rev-parse", "--show-object-format", check=False).strip()
            self._format = out.decode() or "sha1"
        return self._format

    # -- observing ---------------------------------------------------------------------

    def head(self) -> str:
        """The commit the branch points at now (fetching a mirror first)."""
        if not os.path.isdir(self.git_dir):
            raise SourceGone(f"repository {self.git_dir} does not exist", blog_id=self.blog_id)
        if self.mirror_of is not None:
            self._git("fetch", "--prune", "--force", "--quiet", "origin")
        branch = self.branch
        if branch is None:
            branch = self._git("symbolic-ref", "--short", "HEAD").decode().strip()
        found = self._git(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
        ).strip()
        if not found:
            raise SourceGone(
                f"branch {branch!r} does not exist in {self.mirror_of or self.git_dir}",
                blog_id=self.blog_id,
            )
        return found.decode()

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Iterator[Observation]:
        head = self.head()
        if cursor == head:
            yield Observation((), (), head)
            return
        stamp = int(self._git("show", "-s", "--format=%ct", head).strip() or 0) * 10**9
        if cursor is not None and self._has_commit(cursor):
            entries = self._diff(cursor, head)
            full = False
        else:
            entries = self._tree(head)
            full = True
        final: dict[str, Node | None] = {}
        needed: dict[str, list[str]] = {}
        for raw, entry in entries.items():
            if any(is_ignored_name(part) for part in raw.split("/")[:-1]):
                continue  # inside an ignored folder: not even recorded
            key, problem = key_or_problem(raw)
            if entry is None:
                final[key] = None
                continue
            node = self._node(key, raw, entry, problem, known.get(key), stamp)
            if node is None:
                needed.setdefault(entry.oid, []).append(key)
                final[key] = Node(key, Kind.FILE, size=entry.size, rev=entry.oid)
            else:
                final[key] = node
        for oid, digest in self._hashes(list(needed)).items():
            for key in needed[oid]:
                partial = final[key]
                assert partial is not None
                final[key] = Node(
                    key,
                    Kind.FILE,
                    size=partial.size,
                    mtime_ns=stamp,
                    content_hash=digest,
                    rev=oid,
                )
        if full:
            for key in known:
                final.setdefault(key, None)
        upserts = tuple(n for k, n in final.items() if n is not None and known.get(k) != n)
        deletes = tuple(k for k, n in final.items() if n is None and k in known)
        yield Observation(upserts, deletes, head)

    def _node(
        self, key: str, raw: str, entry: _Entry, problem: str | None, old: Node | None, stamp: int
    ) -> Node | None:
        """The node for ``entry``; None when its content hash must be computed first."""
        name = raw.rpartition("/")[2]
        if problem is not None:
            return Node(key, Kind.FILE, problem=problem)
        if entry.mode == _TREE:
            return Node(key, Kind.DIR)
        if entry.mode == _GITLINK:
            return Node(key, Kind.DIR, rev=entry.oid, ignored=True)
        if entry.mode == _SYMLINK or is_ignored_name(name):
            return Node(key, Kind.FILE, rev=entry.oid, ignored=True)
        if old is not None and old.rev == entry.oid and old.content_hash is not None:
            return old
        return None

    def _has_commit(self, oid: str) -> bool:
        found = self._git("rev-parse", "--verify", "--quiet", f"{oid}^{{commit}}", check=False)
        return found.strip() != b""

    def _tree(self, commit: str) -> dict[str, _Entry | None]:
        """Every path of ``commit``'s tree (directories included)."""
        out = self._git("ls-tree", "-r", "-t", "-z", "-l", "--full-tree", commit)
        entries: dict[str, _Entry | None] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, _kind, oid, size = meta.decode().split()
            entries[path.decode("utf-8", "surrogateescape")] = _Entry(
                mode, oid, int(size) if size.isdigit() else 0
            )
        return entries

    def _diff(self, old: str, new: str) -> dict[str, _Entry | None]:
        """The paths that differ between two commits: their new entry, or None."""
        out = self._git("diff-tree", "-r", "-t", "-z", "--no-renames", "--no-commit-id", old, new)
        fields = out.split(b"\0")
        changed: dict[str, _Entry | None] = {}
        i = 0
        while i + 1 < len(fields) and fields[i]:
            meta, path = fields[i].decode(), fields[i + 1].decode("utf-8", "surrogateescape")
            i += 2
            _old_mode, new_mode, _old_oid, new_oid, status = meta.lstrip(":").split()
            if status.startswith("D"):
                changed.setdefault(path, None)
            else:
                changed[path] = _Entry(new_mode, new_oid)
        blobs = [
            e.oid for e in changed.values() if e is not None and e.mode not in (_TREE, _GITLINK)
        ]
        sizes = self._sizes(blobs)
        for path, entry in changed.items():
            if entry is not None and entry.oid in sizes:
                changed[path] = _Entry(entry.mode, entry.oid, sizes[entry.oid])
        return changed

    def _batch(self, args: list[str], oids: list[str]) -> Iterator[tuple[str, bytes, bytes]]:
        """``git cat-file`` over many objects: (oid, header, content) per object."""
        if not oids:
            return
        proc = subprocess.Popen(
            ["git", f"--git-dir={self.git_dir}", "cat-file", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            with_content = "--batch" in args
            for oid in oids:
                proc.stdin.write(oid.encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().rstrip(b"\n")
                content = b""
                if with_content and not header.endswith(b"missing"):
                    size = int(header.split()[2])
                    content = proc.stdout.read(size)
                    proc.stdout.read(1)
                yield oid, header, content
        finally:
            proc.stdin.close()
            proc.stdout.close()
            proc.wait()

    def _sizes(self, oids: list[str]) -> dict[str, int]:
        return {
            oid: int(header.split()[2])
            for oid, header, _ in self._batch(["--batch-check"], oids)
            if not header.endswith(b"missing")
        }

    def _hashes(self, oids: list[str]) -> dict[str, str]:
        """The content hash of each blob (read once, when it first appears)."""
        digests = {}
        for oid, header, content in self._batch(["--batch"], oids):
            if header.endswith(b"missing"):
                raise SourceError(
                    f"object {oid} is missing from the repository", blog_id=self.blog_id
                )
            hasher = ContentHasher()
            hasher.update(content)
            digests[oid] = hasher.hexdigest()
        return digests

    # -- fetching ----------------------------------------------------------------------

    def fetch(self, node: Node, into: Sink) -> None:
        """Stream the blob and check it is the object its id names."""
        if node.rev is None:
            raise FetchError("no blob id for this file", blog_id=self.blog_id, path=node.path)
        proc = subprocess.Popen(
            ["git", f"--git-dir={self.git_dir}", "cat-file", "blob", node.rev],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        digest = hashlib.new(self._object_format())
        digest.update(b"blob %d\0" % node.size)
        got = 0
        while chunk := proc.stdout.read(CHUNK):
            digest.update(chunk)
            into.write(chunk)
            got += len(chunk)
        proc.stdout.close()
        if proc.wait() != 0:
            raise FetchError(
                f"git cannot read blob {node.rev}", blog_id=self.blog_id, path=node.path
            )
        if got != node.size or digest.hexdigest() != node.rev:
            raise FetchError(
                f"the bytes read are not blob {node.rev}", blog_id=self.blog_id, path=node.path
            )
