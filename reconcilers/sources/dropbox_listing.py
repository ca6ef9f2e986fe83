"""Turning Dropbox listing entries into observations of the remote tree (pure).

Dropbox reports changes as an ordered list of entries, each the current state
of one path: a file replaces whatever was at its path (and the children of a
folder that was there), a folder replaces a file but keeps its own children
(unless it is another folder, by id, than the one stored at that path), a
deleted entry removes the whole subtree. There is no "moved" entry: a move
is a delete at the old path and metadata at the new one, and the file's id
is what lets the rename library tell it from a new file.

:class:`Overlay` applies entries in that order on top of the stored remote
tree and, per page, says what differs from what was stored before the page:
so each page can be saved with its cursor in one transaction. A full listing
(first pass, or after a cursor ``reset``) also remembers every path it saw,
and its last page removes whatever the store holds that the listing did not
contain; until then the old cursor is kept, so a crash mid-listing lists again
rather than trusting a partial one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from reconcilers.core.tree import Kind, Node, key_or_problem, parent_of
from reconcilers.sources.base import Observation
from reconcilers.sources.names import is_ignored_name

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One listing entry, SDK-free, with its path relative to the blog folder.

    ``path_lower`` and ``path_display`` have no leading slash; ``""`` is the
    blog folder itself.
    """

    tag: Literal["file", "folder", "deleted"]
    path_lower: str
    path_display: str
    id: str | None = None
    rev: str | None = None
    size: int = 0
    content_hash: str | None = None
    client_modified_ns: int = 0
    downloadable: bool = True


def _size(n: int) -> str:
    return f"{n / MiB:.3g} MB" if n >= MiB else f"{n} bytes"


def to_node(entry: Entry, max_file_size: int) -> Node | None:
    """The node an entry describes; None for paths under an ignored folder."""
    key, problem = key_or_problem(entry.path_lower)
    names = entry.path_display.split("/")
    if any(is_ignored_name(name) for name in names[:-1]):
        return None
    kind = Kind.DIR if entry.tag == "folder" else Kind.FILE
    display = entry.path_display if entry.path_display != key else None
    if problem is not None:
        return Node(key, Kind.FILE, problem=problem, display=display)
    if is_ignored_name(names[-1]):
        return Node(key, kind, ignored=True, display=display)
    if kind is Kind.DIR:
        return Node(key, kind, id=entry.id, display=display)
    if not entry.downloadable:
        problem = "Dropbox cannot download this file (a cloud-only document)"
    elif entry.size > max_file_size:
        problem = f"file is {_size(entry.size)}, over the {_size(max_file_size)} limit for Dropbox"
    return Node(
        key,
        kind,
        size=entry.size,
        mtime_ns=entry.client_modified_ns,
        content_hash=entry.content_hash,
        rev=entry.rev,
        id=entry.id,
        problem=problem,
        display=display,
    )


def _replaces(node: Node, folder: Node) -> bool:
    """Whether ``node`` replaces the stored ``folder`` rather than updating it.

    A folder with another id is another folder (the old one was deleted or
    moved away, a different one took its path): whatever is in the new one
    was created or moved in after it, and is reported after it.
    """
    if node.kind is Kind.FILE:
        return True
    return node.id is not None and folder.id is not None and node.id != folder.id


class Overlay:
    """The stored remote tree with the entries seen so far applied on top."""

    def __init__(self, known: Mapping[str, Node], *, max_file_size: int) -> None:
        self.known = known
        self.max_file_size = max_file_size
        self._changed: dict[str, Node | None] = {}
        self._page_before: dict[str, Node | None] = {}
        self._children: dict[str, set[str]] | None = None
        self._seen: set[str] | None = None

    # -- reading -------------------------------------------------------------

    def get(self, key: str) -> Node | None:
        if key in self._changed:
            return self._changed[key]
        return self.known.get(key)

    def keys(self) -> set[str]:
        present = {k for k, n in self._changed.items() if n is not None}
        return present | {k for k in self.known if k not in self._changed}

    @property
    def listing_in_full(self) -> bool:
        return self._seen is not None

    # -- applying ------------------------------------------------------------

    def start_full_listing(self) -> None:
        """From now on, remember what the listing contains (see :meth:`finish`)."""
        self._seen = set()

    def apply(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if entry.tag == "deleted":
                key, _ = key_or_problem(entry.path_lower)
                self._remove_subtree(key)
                self._set(key, None)
                continue
            node = to_node(entry, self.max_file_size)
            if node is None:
                continue
            old = self.get(node.path)
            if old is not None and old.kind is Kind.DIR and _replaces(node, old):
                self._remove_subtree(node.path)
            if self._seen is not None:
                self._seen.add(node.path)
            if old is None or old != node or old.display != node.display:
                self._set(node.path, node)

    def page(self, cursor: str | None) -> Observation:
        """What this page changed against the store, to be saved with ``cursor``."""
        upserts: list[Node] = []
        deletes: list[str] = []
        for key, before in self._page_before.items():
            now = self.get(key)
            if now is None:
                if before is not None:
                    deletes.append(key)
            elif before is None or now != before or now.display != before.display:
                upserts.append(now)
        self._page_before = {}
        return Observation(tuple(upserts), tuple(deletes), cursor)

    def finish(self, cursor: str | None) -> Observation:
        """The last page of a full listing: it also removes what the listing lacked."""
        seen = self._seen if self._seen is not None else set()
        for key in sorted(self.keys() - seen, reverse=True):
            self._set(key, None)
        self._seen = None
        return self.page(cursor)

    # -- internals -------------------------------------------------------------

    def _set(self, key: str, node: Node | None) -> None:
        old = self.get(key)
        if key not in self._page_before:
            self._page_before[key] = old
        self._changed[key] = node
        if self._children is not None:
            siblings = self._children.setdefault(parent_of(key), set())
            if node is None:
                siblings.discard(key)
            else:
                siblings.add(key)

    def _remove_subtree(self, key: str) -> None:
        """Remove every descendant of ``key`` (not ``key`` itself)."""
        if self._children is None:
            self._children = {}
            for present in self.keys():
                self._children.setdefault(parent_of(present), set()).add(present)
        stack = list(self._children.get(key, ()))
        while stack:
            child = stack.pop()
            stack.extend(self._children.get(child, ()))
            self._set(child, None)
