"""One account's files as Dropbox keeps them: pure data, no HTTP, no locking.

Every change is written to the account's journal, because ``list_folder/continue``
must answer from history (what changed since a cursor), not from a diff of trees.
The caller (``FakeDropbox``) holds one lock around every call into this module.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .journal import Journal

BLOCK_SIZE = 4 * 1024 * 1024
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Key = tuple[str, ...]


def content_hash(data: bytes) -> str:
    """Dropbox's hash, computed here rather than taken from the SDK so tests can cross-check."""
    blocks = b"".join(
        hashlib.sha256(data[i : i + BLOCK_SIZE]).digest() for i in range(0, len(data), BLOCK_SIZE)
    )
    return hashlib.sha256(blocks).hexdigest()


def now_stamp() -> str:
    return time.strftime(TIME_FORMAT, time.gmtime())


def stamp(value: datetime | str | None, default: str) -> str:
    """Dropbox timestamps have whole seconds and no zone; a naive datetime is taken as UTC."""
    if value is None:
        return default
    if isinstance(value, str):
        datetime.strptime(value, TIME_FORMAT)  # reject what the SDK could not parse
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(TIME_FORMAT)


def key_of(path_lower: str) -> Key:
    """Sorting by this tuple lists every folder right before its own descendants."""
    return tuple(path_lower[1:].split("/")) if path_lower else ()


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0]


class LookupFailure(Exception):
    """What Dropbox reports as the route error ``path/<tag>`` (a ``LookupError``)."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


@dataclass
class Revision:
    """A file's content at one rev, kept so ``rev:`` downloads work after later edits."""

    file_id: str
    rev: str
    content: bytes
    content_hash: str
    client_modified: str
    server_modified: str
    path_display: str


@dataclass
class Node:
    id: str
    path_display: str
    is_folder: bool
    seq: int
    revision: Revision | None = None

    @property
    def name(self) -> str:
        return self.path_display.rsplit("/", 1)[1]

    def metadata(self) -> dict[str, object]:
        base: dict[str, object] = {
            ".tag": "folder" if self.is_folder else "file",
            "name": self.name,
            "path_lower": self.path_display.lower(),
            "path_display": self.path_display,
            "id": self.id,
        }
        if self.revision is not None:
            base.update(revision_fields(self.revision))
        return base


def revision_fields(rev: Revision) -> dict[str, object]:
    return {
        "client_modified": rev.client_modified,
        "server_modified": rev.server_modified,
        "rev": rev.rev,
        "size": len(rev.content),
        "is_downloadable": True,
        "content_hash": rev.content_hash,
    }


def deleted_metadata(path_display: str) -> dict[str, object]:
    return {
        ".tag": "deleted",
        "name": path_display.rsplit("/", 1)[1],
        "path_lower": path_display.lower(),
        "path_display": path_display,
    }


@dataclass
class Ids:
    """Identifiers shared by every account of one fake: ids are never handed out twice."""

    issued: set[str] = field(default_factory=set)
    rev_counter: int = 0
    rev_nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    def new_id(self) -> str:
        while True:
            candidate = "id:" + secrets.token_urlsafe(16)
            if candidate not in self.issued:
                self.issued.add(candidate)
                return candidate

    def new_rev(self) -> str:
        self.rev_counter += 1
        return f"{self.rev_counter:09x}{self.rev_nonce}"


def split_path(path: str) -> list[str]:
    """The components of a display path; raises ``malformed_path`` like Dropbox does."""
    if not path.startswith("/") or path == "/" or path.endswith("/"):
        raise LookupFailure("malformed_path")
    parts = path[1:].split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise LookupFailure("malformed_path")
    return parts


class Namespace:
    """The files of one account, addressed by ``path_lower`` and by id."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.journal = Journal()
        self.nodes: dict[str, Node] = {}
        self.by_id: dict[str, str] = {}
        self.revisions: dict[str, Revision] = {}
        self._order: list[Key] | None = []

    # -- reading ---------------------------------------------------------------

    def resolve(self, path_or_id: str) -> Node | None:
        if path_or_id.startswith("id:"):
            lower = self.by_id.get(path_or_id)
            return None if lower is None else self.nodes[lower]
        split_path(path_or_id)
        return self.nodes.get(path_or_id.lower())

    def find_revision(self, path: str, rev: str | None) -> Revision:
        """What a download of ``path`` (``/..``, ``id:..`` or ``rev:..``) serves."""
        if path.startswith("rev:"):
            found = self.revisions.get(path[4:])
            if found is None:
                raise LookupFailure("not_found")
            return found
        node = self.resolve(path)
        if node is None:
            raise LookupFailure("not_found")
        if node.revision is None:
            raise LookupFailure("not_file")
        if rev is None:
            return node.revision
        found = self.revisions.get(rev)
        if found is None or found.file_id != node.id:
            raise LookupFailure("not_found")
        return found

    def file_metadata(self, rev: Revision) -> dict[str, object]:
        """A revision's FileMetadata, at the file's current path while it still exists."""
        lower = self.by_id.get(rev.file_id)
        display = self.nodes[lower].path_display if lower else rev.path_display
        return {
            ".tag": "file",
            "name": display.rsplit("/", 1)[1],
            "path_lower": display.lower(),
            "path_display": display,
            "id": rev.file_id,
            **revision_fields(rev),
        }

    def order(self) -> list[Key]:
        if self._order is None:
            self._order = sorted(key_of(p) for p in self.nodes)
        return self._order

    def walk(self, root_lower: str, after: Key | None = None) -> Iterator[Node]:
        """``root_lower`` and everything under it, parents first, optionally after a key."""
        order = self.order()
        root = key_of(root_lower)
        start = bisect_left(order, root)
        if after is not None:
            start = max(start, bisect_left(order, after))
            if start < len(order) and order[start] == after:
                start += 1
        # An index, not ``order[start:]``: a listing page would copy the rest of the order.
        for i in range(start, len(order)):
            key = order[i]
            if key[: len(root)] != root:
                return
            yield self.nodes["/" + "/".join(key) if key else ""]

    def tree(self, root_lower: str) -> dict[str, bytes]:
        cut = len(root_lower) + 1
        return {
            n.path_display.lower()[cut:]: n.revision.content
            for n in self.walk(root_lower)
            if n.revision is not None
        }

    def folders(self, root_lower: str) -> set[str]:
        cut = len(root_lower) + 1
        return {
            n.path_display.lower()[cut:]
            for n in self.walk(root_lower)
            if n.is_folder and n.path_display.lower() != root_lower
        }

    # -- changing --------------------------------------------------------------

    def _place(self, node: Node) -> None:
        lower = node.path_display.lower()
        node.seq = self.journal.record(node.path_display, deleted=False)
        self.nodes[lower] = node
        self.by_id[node.id] = lower
        self._order = None

    def mkdir(self, path: str) -> Node:
        """Creates the folder and any missing parents, keeping the casing of those that exist."""
        display = ""
        node: Node | None = None
        for part in split_path(path):
            node = self.nodes.get(f"{display}/{part}".lower())
            if node is None:
                node = Node(self.ids.new_id(), f"{display}/{part}", True, 0)
                self._place(node)
            elif not node.is_folder:
                raise LookupFailure("not_folder")
            display = node.path_display
        assert node is not None
        return node

    def put(self, path: str, data: bytes, client_modified: datetime | str | None) -> Node:
        """Overwriting keeps the file's id and name casing, as Dropbox's overwrite mode does."""
        parts = split_path(path)
        parent = self.mkdir(parent_of(path)).path_display if len(parts) > 1 else ""
        lower = path.lower()
        node = self.nodes.get(lower)
        if node is not None and node.is_folder:
            raise LookupFailure("not_file")
        server_modified = now_stamp()
        display = node.path_display if node else f"{parent}/{parts[-1]}"
        revision = Revision(
            file_id=node.id if node else self.ids.new_id(),
            rev=self.ids.new_rev(),
            content=bytes(data),
            content_hash=content_hash(data),
            client_modified=stamp(client_modified, server_modified),
            server_modified=server_modified,
            path_display=display,
        )
        self.revisions[revision.rev] = revision
        if node is None:
            node = Node(revision.file_id, display, False, 0)
        node.revision = revision
        self._place(node)
        return node

    def delete(self, path_or_id: str) -> None:
        """One journal entry for the whole subtree: continue reports one DeletedMetadata."""
        node = self.resolve(path_or_id)
        if node is None:
            raise LookupFailure("not_found")
        lower = node.path_display.lower()
        for gone in list(self.walk(lower)):
            del self.nodes[gone.path_display.lower()]
            del self.by_id[gone.id]
        self._order = None
        self.journal.record(node.path_display, deleted=True)

    def move(self, src: str, dst: str) -> Node:
        node = self.resolve(src)
        if node is None:
            raise LookupFailure("not_found")
        dst_parts = split_path(dst)
        old_lower, new_lower = node.path_display.lower(), dst.lower()
        if old_lower == new_lower:
            return self._rename_case(node, dst_parts[-1])
        if new_lower.startswith(old_lower + "/"):
            raise ValueError(f"cannot move {src!r} into itself ({dst!r})")
        if new_lower in self.nodes:
            raise FileExistsError(dst)
        self._check_parents(dst_parts)
        moving = list(self.walk(old_lower))
        for n in moving:
            del self.nodes[n.path_display.lower()]
        self._order = None
        seq = self.journal.record(node.path_display, deleted=True)  # reported before the new place
        parent = self.mkdir(parent_of(dst)).path_display if len(dst_parts) > 1 else ""
        new_display = f"{parent}/{dst_parts[-1]}"
        self.journal.relocate(seq, old_lower, new_display)
        cut = len(node.path_display)
        for n in moving:
            n.path_display = new_display + n.path_display[cut:]
            if n.revision is not None:
                n.revision.path_display = n.path_display
            self._place(n)
        return node

    def _check_parents(self, parts: list[str]) -> None:
        """Fails before anything changes when a parent of the destination is a file."""
        lower = ""
        for part in parts[:-1]:
            lower = f"{lower}/{part.lower()}"
            node = self.nodes.get(lower)
            if node is not None and not node.is_folder:
                raise LookupFailure("not_folder")

    def _rename_case(self, node: Node, name: str) -> Node:
        """Not journaled: real Dropbox may not report a case-only rename to ``continue``."""
        old = node.path_display
        new = old.rsplit("/", 1)[0] + "/" + name
        for n in self.walk(old.lower()):
            n.path_display = new + n.path_display[len(old) :]
            if n.revision is not None:
                n.revision.path_display = n.path_display
        return node
