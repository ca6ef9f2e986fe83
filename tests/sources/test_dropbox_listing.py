"""Dropbox entries to observations: applying pages in order rebuilds the remote tree.

A small model of a Dropbox folder (files and folders with ids and revs) is
changed at random; the entries ``list_folder/continue`` would report (the
current state of every changed path, in the order of its last change, a
deleted or moved folder reported once at its old path) are cut into random
pages. Saving each page's observation on top of the stored tree must give
exactly the model's tree, and so must a full listing over any stale tree.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcilers.core.tree import Kind, Node
from reconcilers.sources.base import Observation
from reconcilers.sources.dropbox_listing import Entry, MiB, Overlay, to_node

LIMIT = 100 * MiB
NAMES = ["a", "B", "c.md", "D.md"]


class Model:
    """path_lower -> (display, kind, id, rev); the journal of changed paths."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str, str, str | None]] = {}
        self.journal: list[str] = []
        self._ids = itertools.count()

    def _parents(self, display: str) -> None:
        parts = display.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent.lower() not in self.items or self.items[parent.lower()][1] == "file":
                self._remove(parent.lower())
                self.items[parent.lower()] = (parent, "folder", f"id:{next(self._ids)}", None)
                self.journal.append(parent.lower())

    def _remove(self, lower: str) -> None:
        for key in [k for k in self.items if k == lower or k.startswith(lower + "/")]:
            del self.items[key]

    def put(self, display: str) -> None:
        self._parents(display)
        lower = display.lower()
        old = self.items.get(lower)
        if old is not None and old[1] == "folder":
            self._remove(lower)
            old = None
        file_id = old[2] if old else f"id:{next(self._ids)}"
        self.items[lower] = (display, "file", file_id, f"rev{next(self._ids)}")
        self.journal.append(lower)

    def delete(self, lower: str) -> None:
        if lower in self.items:
            self._remove(lower)
            self.journal.append(lower)

    def move(self, lower: str, display: str) -> None:
        new = display.lower()
        if lower not in self.items or new == lower or new.startswith(lower + "/"):
            return
        moving = sorted(
            (k, v) for k, v in self.items.items() if k == lower or k.startswith(lower + "/")
        )
        self._remove(lower)
        self.journal.append(lower)
        self._parents(display)
        self._remove(new)
        for _, (old_display, kind, item_id, rev) in moving:
            new_display = display + old_display[len(lower) :]
            self.items[new_display.lower()] = (new_display, kind, item_id, rev)
            self.journal.append(new_display.lower())

    def entry(self, lower: str) -> Entry:
        if lower not in self.items:
            return Entry("deleted", lower, lower)
        display, kind, item_id, rev = self.items[lower]
        if kind == "folder":
            return Entry("folder", lower, display, id=item_id)
        return Entry("file", lower, display, id=item_id, rev=rev, size=3, content_hash=rev)

    def changes_since(self, mark: int) -> list[Entry]:
        last = {path: n for n, path in enumerate(self.journal[mark:])}
        return [self.entry(path) for path in sorted(last, key=last.__getitem__)]

    def full_listing(self) -> list[Entry]:
        return [self.entry(path) for path in sorted(self.items)]

    def tree(self) -> dict[str, Node]:
        nodes = (to_node(self.entry(path), LIMIT) for path in self.items)
        return {n.path: n for n in nodes if n is not None}


paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), paths),
        st.tuples(st.just("delete"), paths),
        st.tuples(st.just("move"), paths, paths),
    ),
    max_size=12,
)


def _run(model: Model, ops: list[tuple[str, ...]]) -> None:
    for op in ops:
        if op[0] == "put":
            model.put(op[1])
        elif op[0] == "delete":
            model.delete(op[1].lower())
        else:
            model.move(op[1].lower(), op[2])


def _pages(entries: list[Entry], cuts: list[int]) -> list[list[Entry]]:
    points = sorted({c % (len(entries) + 1) for c in cuts} | {0, len(entries)})
    return [entries[a:b] for a, b in itertools.pairwise(points)] or [[]]


def _save(stored: dict[str, Node], observation: Observation) -> None:
    """What the store does with one page."""
    assert not set(observation.deletes) & {n.path for n in observation.upserts}
    for path in observation.deletes:
        del stored[path]
    for node in observation.upserts:
        stored[node.path] = node


def _same(a: Mapping[str, Node], b: Mapping[str, Node]) -> bool:
    return a == b and all(a[k].display == b[k].display for k in a)


@given(before=operations, after=operations, cuts=st.lists(st.integers(0, 50), max_size=4))
def test_continue_pages_applied_in_order_give_the_remote_tree(
    before: list[tuple[str, ...]], after: list[tuple[str, ...]], cuts: list[int]
) -> None:
    model = Model()
    _run(model, before)
    stored, mark = model.tree(), len(model.journal)
    _run(model, after)
    overlay = Overlay(dict(stored), max_file_size=LIMIT)
    for n, page in enumerate(_pages(model.changes_since(mark), cuts)):
        overlay.apply(page)
        _save(stored, overlay.page(f"cursor-{n}"))
    assert _same(stored, model.tree())


@given(stale=operations, now=operations, cuts=st.lists(st.integers(0, 50), max_size=4))
def test_a_full_listing_over_any_stale_tree_gives_the_remote_tree(
    stale: list[tuple[str, ...]], now: list[tuple[str, ...]], cuts: list[int]
) -> None:
    old, model = Model(), Model()
    _run(old, stale)
    _run(model, now)
    stored = old.tree()
    overlay = Overlay(dict(stored), max_file_size=LIMIT)
    overlay.start_full_listing()
    pages = _pages(model.full_listing(), cuts)
    for page in pages[:-1]:
        overlay.apply(page)
        observation = overlay.page("old")
        assert observation.cursor == "old"  # a crash before the last page lists again
        _save(stored, observation)
    overlay.apply(pages[-1])
    _save(stored, overlay.finish("new"))
    assert _same(stored, model.tree())


@given(ops=operations)
def test_listing_an_unchanged_tree_again_observes_nothing(ops: list[tuple[str, ...]]) -> None:
    """After a reset, unchanged files are neither downloaded nor rewritten."""
    model = Model()
    _run(model, ops)
    overlay = Overlay(model.tree(), max_file_size=LIMIT)
    overlay.start_full_listing()
    overlay.apply(model.full_listing())
    assert overlay.finish("c").empty


def test_a_case_only_rename_updates_the_display_name_but_not_the_key() -> None:
    model = Model()
    model.put("Posts/Hello.md")
    overlay = Overlay(model.tree(), max_file_size=LIMIT)
    model.items["posts/hello.md"] = ("Posts/HELLO.md", *model.items["posts/hello.md"][1:])
    overlay.start_full_listing()
    overlay.apply(model.full_listing())
    observation = overlay.finish("c")
    assert [(n.path, n.display) for n in observation.upserts] == [
        ("posts/hello.md", "Posts/HELLO.md")
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            Entry("file", "big.md", "big.md", size=101 * MiB),
            "file is 101 MB, over the 100 MB limit for Dropbox",
        ),
        (Entry("file", "doc.paper", "doc.paper", downloadable=False), "cannot download"),
        (Entry("file", "a\x00b", "a\x00b"), "NUL"),
    ],
)
def test_files_that_cannot_be_mirrored_carry_a_problem(entry: Entry, problem: str) -> None:
    node = to_node(entry, LIMIT)
    assert node is not None and node.problem is not None and problem in node.problem


def test_litter_is_ignored_and_what_is_inside_an_ignored_folder_is_not_recorded() -> None:
    ds_store = to_node(Entry("file", "posts/.ds_store", "Posts/.DS_Store"), LIMIT)
    assert ds_store is not None and ds_store.ignored and ds_store.kind is Kind.FILE
    assert to_node(Entry("file", ".dropbox.cache/x", ".dropbox.cache/x"), LIMIT) is None
