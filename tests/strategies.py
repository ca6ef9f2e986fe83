"""Hypothesis strategies for blog folders, and an oracle that replays plans on a model.

A *content model* is what the strategies generate: ``path -> (kind, content)``
with ``content`` a short string for files and ``None`` for directories. Node
hashes are derived from the content (``size`` is its length, 0 when empty), so
equal contents give equal (hash, size) pairs and duplicates happen on purpose.

A *folder model* is what the oracle checks plans against: ``path -> (kind,
content_hash)`` (``None`` for directories), the folder a synced tree describes.

Names come from a tiny NFC alphabet (``a``, ``b``, ``A``, ``c``, ``é``) and
contents from a tiny pool (including the empty file), so collisions, case
variants and duplicate hashes are the norm rather than the exception.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from reconcilers.core.machine import State
from reconcilers.core.plan import Action, Build, Drop, Ignore, MakeDir, Move, Reject, Set
from reconcilers.core.planner import SyncedNode
from reconcilers.core.tree import Kind, Node, is_within, name_of, parent_of

E_ACUTE = unicodedata.normalize("NFC", "e\u0301")
NAMES = ("a", "b", "A", "c", E_ACUTE)
CONTENTS = ("", "x", "y", "xy", "post", "page")
MAX_DIR_DEPTH = 4
BUILD_ERROR = "build failed: bad front matter"
PROBLEM = "name is not allowed here"

ContentModel = dict[str, tuple[Kind, str | None]]
FolderModel = dict[str, tuple[Kind, str | None]]
Draw = Callable[[st.SearchStrategy[Any]], Any]

assert all(unicodedata.is_normalized("NFC", name) for name in NAMES)


# -- nodes -------------------------------------------------------------------


def digest(content: str) -> str:
    """A stand-in content hash: distinct contents, distinct hashes."""
    return "hash:" + content.encode("utf-8").hex()


def file_node(path: str, content: str, **extra: Any) -> Node:
    return Node(
        path, Kind.FILE, size=len(content.encode("utf-8")), content_hash=digest(content), **extra
    )


def dir_node(path: str, **extra: Any) -> Node:
    return Node(path, Kind.DIR, **extra)


def node_of(path: str, kind: Kind, content: str | None) -> Node:
    return dir_node(path) if kind is Kind.DIR else file_node(path, content or "")


def nodes_of(model: Mapping[str, tuple[Kind, str | None]]) -> dict[str, Node]:
    """The remote tree for a content model."""
    return {path: node_of(path, kind, content) for path, (kind, content) in sorted(model.items())}


def synced_of(
    model: Mapping[str, tuple[Kind, str | None]], rejected: Iterable[str] = ()
) -> dict[str, SyncedNode]:
    """A settled synced tree for a content model (``rejected`` files failed to build)."""
    bad = set(rejected)
    result = {}
    for path, node in nodes_of(model).items():
        if path in bad and node.kind is Kind.FILE:
            result[path] = SyncedNode(node, State.REJECTED, error=BUILD_ERROR)
        else:
            result[path] = SyncedNode(node, State.SYNCED)
    return result


# -- content-model helpers ----------------------------------------------------


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def components(path: str) -> int:
    return 0 if path == "" else path.count("/") + 1


def dirs_in(model: Mapping[str, tuple[Kind, str | None]]) -> list[str]:
    """Every directory, the root ``""`` first."""
    return ["", *sorted(p for p, (kind, _) in model.items() if kind is Kind.DIR)]


def files_in(model: Mapping[str, tuple[Kind, str | None]]) -> list[str]:
    return sorted(p for p, (kind, _) in model.items() if kind is Kind.FILE)


def remove_subtree(model: ContentModel, path: str) -> None:
    for p in [p for p in model if is_within(p, path)]:
        del model[p]


def move_subtree(model: ContentModel, src: str, dst: str) -> None:
    """``rename(src, dst)`` on the model (a file may replace a file)."""
    assert not is_within(dst, src)
    moving = {p: model.pop(p) for p in [p for p in model if is_within(p, src)]}
    model.pop(dst, None)
    for p, entry in moving.items():
        model[dst + p[len(src) :]] = entry


def is_valid_tree(model: Mapping[str, Any]) -> bool:
    """Every node's parent is the root or a directory of the tree."""

    def kind(value: Any) -> Kind:
        return value.kind if isinstance(value, Node) else value[0]

    return all(
        parent_of(p) == "" or (parent_of(p) in model and kind(model[parent_of(p)]) is Kind.DIR)
        for p in model
    )


# -- generating a folder ------------------------------------------------------

contents = st.sampled_from(CONTENTS)
names = st.sampled_from(NAMES)


@st.composite
def content_models(draw: Draw, min_entries: int = 0, max_entries: int = 12) -> ContentModel:
    """A folder: nested directories (at most 4 deep) holding files from the pool."""
    model: ContentModel = {}
    for _ in range(draw(st.integers(min_entries, max_entries))):
        is_dir = draw(st.booleans())
        parents = [d for d in dirs_in(model) if not is_dir or components(d) < MAX_DIR_DEPTH]
        path = join(draw(st.sampled_from(parents)), draw(names))
        if path in model:
            continue
        model[path] = (Kind.DIR, None) if is_dir else (Kind.FILE, draw(contents))
    return model


# -- deriving the remote: one function per kind of change ----------------------


def _free_path(draw: Draw, model: ContentModel, avoid_within: str | None = None) -> str | None:
    parents = [d for d in dirs_in(model) if avoid_within is None or not is_within(d, avoid_within)]
    path = join(draw(st.sampled_from(parents)), draw(names))
    return None if path in model else path


def _create_file(draw: Draw, model: ContentModel) -> None:
    path = _free_path(draw, model)
    if path is not None:
        model[path] = (Kind.FILE, draw(contents))


def _make_dir(draw: Draw, model: ContentModel) -> None:
    path = _free_path(draw, model)
    if path is not None:
        model[path] = (Kind.DIR, None)


def _edit_file(draw: Draw, model: ContentModel) -> None:
    files = files_in(model)
    if files:
        path = draw(st.sampled_from(files))
        old = model[path][1]
        model[path] = (Kind.FILE, draw(st.sampled_from([c for c in CONTENTS if c != old])))


def _delete(draw: Draw, model: ContentModel) -> None:
    if model:
        remove_subtree(model, draw(st.sampled_from(sorted(model))))


def _move_file(draw: Draw, model: ContentModel) -> None:
    """Move a file to a free path or onto another file, replacing it."""
    files = files_in(model)
    if not files:
        return
    src = draw(st.sampled_from(files))
    dst = join(draw(st.sampled_from(dirs_in(model))), draw(names))
    if dst != src and (dst not in model or model[dst][0] is Kind.FILE):
        move_subtree(model, src, dst)


def _move_dir(draw: Draw, model: ContentModel) -> None:
    """Rename a directory, move it into a sibling or out to its parent, never into itself."""
    dirs = dirs_in(model)[1:]
    if not dirs:
        return
    src = draw(st.sampled_from(dirs))
    siblings = [d for d in dirs if parent_of(d) == parent_of(src) and d != src]
    grandparent = parent_of(parent_of(src)) if parent_of(src) else None
    preferred = [parent_of(src), *siblings] + ([grandparent] if grandparent is not None else [])
    anywhere = [d for d in dirs_in(model) if not is_within(d, src)]
    parent = draw(st.sampled_from(preferred) | st.sampled_from(anywhere))
    dst = join(parent, draw(names))
    if dst not in model and not is_within(dst, src):
        move_subtree(model, src, dst)


def _swap(draw: Draw, model: ContentModel) -> None:
    files = files_in(model)
    if len(files) >= 2:
        a, b = draw(st.lists(st.sampled_from(files), min_size=2, max_size=2, unique=True))
        model[a], model[b] = model[b], model[a]


def _cycle(draw: Draw, model: ContentModel) -> None:
    """a -> b -> c -> a."""
    files = files_in(model)
    if len(files) >= 3:
        a, b, c = draw(st.lists(st.sampled_from(files), min_size=3, max_size=3, unique=True))
        model[a], model[b], model[c] = model[c], model[a], model[b]


def _chain(draw: Draw, model: ContentModel) -> None:
    """b -> c (a new path), then a -> b."""
    files = files_in(model)
    if len(files) < 2:
        return
    a, b = draw(st.lists(st.sampled_from(files), min_size=2, max_size=2, unique=True))
    c = _free_path(draw, model)
    if c is not None:
        model[c] = model[b]
        model[b] = model.pop(a)


def _case_rename(draw: Draw, model: ContentModel) -> None:
    """``a`` -> ``A`` (and back): a case-only rename of a file or a directory."""
    candidates = [p for p in sorted(model) if name_of(p).swapcase() != name_of(p)]
    if not candidates:
        return
    src = draw(st.sampled_from(candidates))
    dst = join(parent_of(src), unicodedata.normalize("NFC", name_of(src).swapcase()))
    if dst not in model:
        move_subtree(model, src, dst)


def _file_to_dir(draw: Draw, model: ContentModel) -> None:
    files = files_in(model)
    if files:
        path = draw(st.sampled_from(files))
        model[path] = (Kind.DIR, None)
        if draw(st.booleans()):
            model[join(path, draw(names))] = (Kind.FILE, draw(contents))


def _dir_to_file(draw: Draw, model: ContentModel) -> None:
    dirs = dirs_in(model)[1:]
    if dirs:
        path = draw(st.sampled_from(dirs))
        remove_subtree(model, path)
        model[path] = (Kind.FILE, draw(contents))


def _merge_dirs(draw: Draw, model: ContentModel) -> None:
    """Merge two unrelated directories: into the second one, or both into a new one."""
    dirs = dirs_in(model)[1:]
    pairs = [(a, b) for a in dirs for b in dirs if not is_within(a, b) and not is_within(b, a)]
    if not pairs:
        return
    first, second = draw(st.sampled_from(pairs))
    sources = [first]
    target = second
    if draw(st.booleans()):
        parents = [
            d for d in dirs_in(model) if not is_within(d, first) and not is_within(d, second)
        ]
        target = join(draw(st.sampled_from(parents)), draw(names))
        if target in model:
            return
        model[target] = (Kind.DIR, None)
        sources.append(second)
    for source in sources:
        for child in sorted(p for p in model if parent_of(p) == source):
            dst = join(target, name_of(child))
            if dst not in model or model[dst][0] is model[child][0] is Kind.FILE:
                move_subtree(model, child, dst)
        remove_subtree(model, source)


OPERATIONS: dict[str, Callable[[Draw, ContentModel], None]] = {
    "create file": _create_file,
    "edit file": _edit_file,
    "delete": _delete,
    "move file": _move_file,
    "move dir": _move_dir,
    "swap": _swap,
    "3-cycle": _cycle,
    "chain": _chain,
    "case rename": _case_rename,
    "file to dir": _file_to_dir,
    "dir to file": _dir_to_file,
    "make dir": _make_dir,
    "merge dirs": _merge_dirs,
}


#: Changes that reorganise a folder rather than edit it (directory changes weigh double).
REORGANISATIONS = ("move dir", "merge dirs") * 2 + ("case rename", "move file", "chain", "swap")


@st.composite
def derived_models(
    draw: Draw,
    model: Mapping[str, tuple[Kind, str | None]],
    max_ops: int = 6,
    operations: Iterable[str] = OPERATIONS,
    min_ops: int = 0,
) -> ContentModel:
    """``model`` after a random list of changes (the remote a source would list)."""
    result: ContentModel = dict(model)
    chosen = sorted(operations)
    for _ in range(draw(st.integers(min_ops, max_ops))):
        OPERATIONS[draw(st.sampled_from(chosen))](draw, result)
        assert is_valid_tree(result), result
    return result


# -- remote flags: ignored nodes and problems ---------------------------------

IGNORED_NAMES = (".DS_Store", ".~ctl-move-1", "Thumbs.db")
PROBLEM_NAMES = ("con", "bad:name")


@st.composite
def flagged(draw: Draw, remote: Mapping[str, Node]) -> dict[str, Node]:
    """``remote`` with some nodes ignored or marked with a problem, plus extra such nodes."""
    result = dict(remote)
    paths = sorted(result)
    if paths:
        for path in draw(st.sets(st.sampled_from(paths), max_size=3)):
            result[path] = replace(result[path], ignored=True)
        for path in draw(st.sets(st.sampled_from(paths), max_size=2)):
            result[path] = replace(result[path], problem=PROBLEM)
    for _ in range(draw(st.integers(0, 3))):
        parents = ["", *sorted(p for p, n in result.items() if n.kind is Kind.DIR)]
        parent = draw(st.sampled_from(parents))
        is_dir = draw(st.booleans())
        ignored = draw(st.booleans())
        name = draw(st.sampled_from(IGNORED_NAMES if ignored else PROBLEM_NAMES))
        path = join(parent, name)
        if path not in result:
            base = dir_node(path) if is_dir else file_node(path, draw(contents))
            if ignored:
                result[path] = replace(base, ignored=True)
            else:
                result[path] = replace(base, problem=PROBLEM)
    return result


# -- scenarios ------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A synced tree (the folder as installed) and the remote tree a source lists."""

    old: ContentModel
    new: ContentModel
    synced: dict[str, SyncedNode]
    remote: dict[str, Node]
    notes: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        def model(m: ContentModel) -> str:
            return ", ".join(
                f"{p!r}: {c!r}" if k is Kind.FILE else f"{p!r}/" for p, (k, c) in m.items()
            )

        unusual = {p: r.state.value for p, r in self.synced.items() if r.state is not State.SYNCED}
        flags = {
            p: n.problem or "ignored" for p, n in self.remote.items() if n.ignored or n.problem
        }
        extra = {p: n for p, n in self.remote.items() if p not in self.new}
        return (
            f"Scenario(\n  old={{{model(self.old)}}},\n  new={{{model(self.new)}}},\n"
            f"  states={unusual!r},\n  flags={flags!r},\n  extra remote={sorted(extra)!r},\n"
            f"  notes={self.notes!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@st.composite
def scenarios(draw: Draw, flags: bool = False, max_ops: int = 6) -> Scenario:
    """A settled folder and a remote derived from it by random changes.

    With ``flags``, the remote also carries ignored and problem nodes, and the
    synced tree has rows for paths with nothing installed (pending new files)
    and installed files still waiting for their build (``building``).
    """
    old = draw(content_models())
    rejected = draw(st.sets(st.sampled_from(files_in(old)))) if files_in(old) else set()
    new = draw(derived_models(old, max_ops=max_ops))
    synced_tree = synced_of(old, rejected)
    remote = nodes_of(new)
    if flags:
        remote = draw(flagged(remote))
        unbuilt = [p for p in files_in(old) if p not in rejected]
        for path in draw(st.sets(st.sampled_from(unbuilt), max_size=2)) if unbuilt else ():
            synced_tree[path] = SyncedNode(synced_tree[path].node, State.BUILDING)
        for _ in range(draw(st.integers(0, 2))):
            path = join(draw(st.sampled_from(dirs_in(old))), draw(names))
            if path not in synced_tree:
                pending = Node(path, Kind.FILE, size=1, content_hash=None)
                synced_tree[path] = SyncedNode(pending, State.PENDING)
    return Scenario(old, new, synced_tree, remote)


@st.composite
def reorganisations(draw: Draw, max_ops: int = 4) -> Scenario:
    """A folder of mostly distinct contents whose directories are renamed, moved and
    merged, and whose files are moved: the changes rename inference is for."""
    old = draw(content_models(min_entries=6, max_entries=16))
    for index, path in enumerate(files_in(old)):
        if old[path][1]:
            old[path] = (Kind.FILE, f"text {index}")
    new = draw(derived_models(old, max_ops, REORGANISATIONS, min_ops=1))
    return Scenario(old, new, synced_of(old), nodes_of(new))


@st.composite
def directory_renames(draw: Draw) -> Scenario:
    """A folder where one directory (holding files of distinct, non-empty content)
    is renamed or moved elsewhere, and nothing else changes."""
    old = draw(content_models())
    dirs = dirs_in(old)[1:]
    if dirs:
        dir_path = draw(st.sampled_from(dirs))
    else:
        dir_path = next(n for n in (*NAMES, "dir") if n not in old)
        old[dir_path] = (Kind.DIR, None)
    # Give every file under the directory its own content, and add one if it has none.
    inside = [p for p in files_in(old) if is_within(p, dir_path)]
    if not inside:
        inside = [next(join(dir_path, n) for n in (*NAMES, "new") if join(dir_path, n) not in old)]
    for index, path in enumerate(inside):
        old[path] = (Kind.FILE, f"unique-{index}")
    parents = [d for d in dirs_in(old) if not is_within(d, dir_path)]
    dst = join(draw(st.sampled_from(parents)), draw(names))
    if dst in old:
        dst = join(parent_of(dir_path), "renamed")
        if dst in old:
            remove_subtree(old, dst)
    new = dict(old)
    move_subtree(new, dir_path, dst)
    return Scenario(old, new, synced_of(old), nodes_of(new), notes=(dir_path, dst))


# -- the oracle -----------------------------------------------------------------


class UnsoundPlan(AssertionError):
    """An action's precondition does not hold on the folder model."""


def folder_of(synced_tree: Mapping[str, SyncedNode]) -> FolderModel:
    """The folder a synced tree describes: the rows that are on disk."""
    return {
        path: (row.node.kind, row.node.content_hash if row.node.kind is Kind.FILE else None)
        for path, row in synced_tree.items()
        if row.on_disk
    }


def _classify(remote: Mapping[str, Node]) -> tuple[set[str], set[str], set[str]]:
    """(wanted, ignored, rejected) paths of a valid remote tree, by the contract:
    a problem rejects a node and its subtree; an ignored flag ignores a subtree."""
    wanted: set[str] = set()
    ignored: set[str] = set()
    rejected: set[str] = set()
    for path in sorted(remote):
        node, parent = remote[path], parent_of(path)
        if node.problem is not None:
            rejected.add(path)
        elif node.ignored or parent in ignored:
            ignored.add(path)
        elif parent in rejected:
            rejected.add(path)
        else:
            wanted.add(path)
    return wanted, ignored, rejected


def wanted_folder(remote: Mapping[str, Node]) -> FolderModel:
    """The folder that should exist once ``remote`` is mirrored."""
    wanted, _, _ = _classify(remote)
    return {
        path: (remote[path].kind, remote[path].content_hash if not remote[path].is_dir else None)
        for path in wanted
    }


def _fail(index: int, action: Action, why: str) -> UnsoundPlan:
    return UnsoundPlan(f"action #{index} {action!r}: {why}")


def apply_plan(
    folder: Mapping[str, tuple[Kind, str | None]], plan: Iterable[Action]
) -> FolderModel:
    """Replay ``plan`` on a copy of ``folder``, checking every action's preconditions."""
    fs: FolderModel = dict(folder)

    def is_dir(path: str) -> bool:
        return path == "" or (path in fs and fs[path][0] is Kind.DIR)

    for index, action in enumerate(plan):
        if isinstance(action, Drop):
            if not action.on_disk:
                continue
            if action.path not in fs or fs[action.path][0] is not action.kind:
                raise _fail(index, action, f"nothing of that kind there ({fs.get(action.path)})")
            if action.kind is Kind.DIR and any(parent_of(p) == action.path for p in fs):
                raise _fail(index, action, "the directory is not empty")
            del fs[action.path]
        elif isinstance(action, Move):
            src, dst = action.src, action.dst
            if src not in fs or fs[src][0] is not action.kind:
                raise _fail(index, action, f"the source is {fs.get(src)}")
            if not is_dir(parent_of(dst)):
                raise _fail(index, action, "the target's parent is not a directory")
            if is_within(dst, src):
                raise _fail(index, action, "the target is inside the source")
            if dst in fs and not (action.kind is Kind.FILE and fs[dst][0] is Kind.FILE):
                raise _fail(index, action, f"the target exists ({fs[dst]})")
            moving = {p: fs.pop(p) for p in [p for p in fs if is_within(p, src)]}
            fs.pop(dst, None)
            for p, entry in moving.items():
                fs[dst + p[len(src) :]] = entry
        elif isinstance(action, MakeDir):
            if action.path in fs:
                raise _fail(index, action, f"the path exists ({fs[action.path]})")
            if not is_dir(parent_of(action.path)):
                raise _fail(index, action, "the parent is not a directory")
            fs[action.path] = (Kind.DIR, None)
        elif isinstance(action, Set):
            if not is_dir(parent_of(action.path)):
                raise _fail(index, action, "the parent is not a directory")
            if action.path in fs and fs[action.path][0] is not Kind.FILE:
                raise _fail(index, action, "a directory is in the way")
            fs[action.path] = (Kind.FILE, action.node.content_hash)
        elif isinstance(action, Build):
            if fs.get(action.path) != (Kind.FILE, action.node.content_hash):
                raise _fail(index, action, f"the installed bytes are {fs.get(action.path)}")
        elif isinstance(action, Ignore | Reject):
            continue
        else:  # pragma: no cover - a new action type needs an oracle rule
            raise _fail(index, action, "unknown action")
    return fs


def synced_after(remote: Mapping[str, Node], plan: Iterable[Action]) -> dict[str, SyncedNode]:
    """The synced tree once ``plan`` has run: wanted nodes synced, ignored nodes
    recorded as ignored, rejected nodes as rejected with the plan's message."""
    wanted, ignored, rejected = _classify(remote)
    messages = {a.path: a.message for a in plan if isinstance(a, Reject)}
    result: dict[str, SyncedNode] = {}
    for path in wanted:
        result[path] = SyncedNode(remote[path], State.SYNCED)
    for path in ignored:
        result[path] = SyncedNode(replace(remote[path], content_hash=None), State.IGNORED)
    for path in rejected:
        node = replace(remote[path], content_hash=None)
        result[path] = SyncedNode(node, State.REJECTED, error=messages.get(path))
    return result


def shuffled(mapping: Mapping[str, Any], order: Iterable[str]) -> dict[str, Any]:
    """``mapping`` rebuilt with its keys inserted in ``order``."""
    return {key: mapping[key] for key in order}
