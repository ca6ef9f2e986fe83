"""A Hypothesis state machine that edits a real source folder and reconciles it.

The machine works on real temporary folders through the library API (no
subprocess): rules create, edit, delete, move, swap and rename files and
directories in the source, add ignored litter, and tamper with the blog folder
behind the controller's back; the ``reconcile`` rule runs a pass and checks:

(a) the blog folder is byte-identical to the source minus ignored names (same
    files, same directories, same bytes) and holds no ``.~ctl-`` temporaries;
(b) live entries match post files: at most one live entry per path, every live
    entry is at a post path of the source, every post that builds has one (with
    the title and draft flag its content and folder say), and the synced tree
    records each source path once, in the state its content deserves;
(c) a second reconcile right away does nothing: no actions, no errors, and no
    file in the blog folder is rewritten (same inode and mtime);
(d) entry ids follow pure renames: a file that only moved since the last pass,
    whose non-empty content is unique before and after, keeps its entry id.

The content pool is tiny, so duplicate contents (which must not be paired as
renames) and empty files happen all the time. Every write stamps the file with
a strictly increasing fake mtime, so change detection never depends on the
timestamp granularity of the file system.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.core.machine import State
from reconcilers.errors import UnsafePlan

IN_CI = os.environ.get("CI", "").lower() == "true"
BLOG = "b"
TEMP_PREFIX = ".~ctl-"
POST_SUFFIXES = (".md", ".markdown", ".txt", ".html")

# Names are shared by files and directories (so a file can sit where a
# directory used to be), with a case variant of ``a``.
FILE_NAMES = ("a", "A", "b", "a.md", "A.md", "b.txt", "c.html", "d.markdown")
DIR_NAMES = ("a", "A", "b", "a.md", "drafts")
POST_NAMES = ("a.md", "A.md", "b.txt", "c.html", "d.markdown")
IGNORED_NAMES = (".DS_Store", "~$a.md", "Thumbs.db")
MAX_DEPTH = 3  # path components, files included

INVALID = "foo: bar: baz\nxyz"
HEADING_MD = "# Heading\n\ntext"
HEADING_HTML = "<h1>Hi</h1>\n"
TITLED = {
    "Title: x\n\nhello": "x",
    "Title: y\nTags: a, b\n\nbody": "y",
    "Title: d\nDraft: yes\n\nbody": "d",
}
# Tiny pools, so that equal contents (and empty files) are common. Posts
# without metadata or heading are titled after their file name.
PLAIN = ("", "x", "y", "xy")
POST_CONTENTS = ("", "p", *TITLED, HEADING_MD, HEADING_HTML, INVALID)
#: Stands for content never written before (so that renames can be paired).
FRESH = "<fresh>"


# -- helpers ------------------------------------------------------------------


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def is_post(path: str) -> bool:
    name = name_of(path)
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in POST_SUFFIXES


def is_ignored(name: str) -> bool:
    return name in IGNORED_NAMES or name.startswith("~$") or name.startswith(TEMP_PREFIX)


def within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def pool(path: str) -> tuple[str, ...]:
    """The contents a file at ``path`` may be given."""
    return (*PLAIN, *POST_CONTENTS, FRESH)


def expected_title(path: str, content: str) -> str:
    name = name_of(path)
    stem = name[: name.rfind(".")]
    html = name.endswith(".html")
    if content.startswith("Title: "):
        return content.partition("\n")[0].removeprefix("Title: ")
    if content == HEADING_MD and not html:
        return "Heading"
    if content == HEADING_HTML and html:
        return "Hi"
    return stem


def expected_draft(path: str, content: str) -> bool:
    return "drafts" in path.split("/")[:-1] or "Draft: yes" in content


def walk(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Every file (with its bytes) and directory under ``root``, by relative key."""
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for directory, subdirs, names in os.walk(root):
        rel = os.path.relpath(directory, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirs.update(prefix + d for d in subdirs)
        for name in names:
            files[prefix + name] = Path(directory, name).read_bytes()
    return files, dirs


def stats(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            st_ = os.stat(os.path.join(directory, name))
            found[os.path.relpath(os.path.join(directory, name), root)] = (
                st_.st_ino,
                st_.st_mtime_ns,
            )
    return found


@functools.cache
def template_database() -> Path:
    """One migrated SQLite file, copied per example (migrations cost ~0.15 s)."""
    folder = Path(tempfile.mkdtemp(prefix="ctl-template-"))
    atexit.register(shutil.rmtree, folder, True)
    Store(f"sqlite:///{folder / 'c.db'}").close()
    return folder / "c.db"


# -- the machine ----------------------------------------------------------------


class ReconcileMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ctl-machine-"))
        self.src = self.tmp / "src"
        self.dst = self.tmp / "dst"
        self.src.mkdir()
        shutil.copyfile(template_database(), self.tmp / "c.db")
        self.store = Store(f"sqlite:///{self.tmp / 'c.db'}")
        self.store.add_blog(
            BlogRecord(
                id=BLOG,
                source_kind="local",
                source_config={"location": str(self.src)},
                folder=str(self.dst),
            )
        )
        # A small batch so that installs are split into several batches.
        self.reconciler = Reconciler(self.store, Settings(data_dir=self.tmp, install_batch=7))
        self.clock = 1_600_000_000 * 10**9
        self.fresh = 0
        # Since the last successful pass: where each file came from (its path
        # then), for files only moved since; edited or new files have no origin.
        self.origin: dict[str, str] = {}
        self.snapshot: dict[str, bytes] = {}
        self.ids: dict[str, str] = {}
        self.drifted = False
        # Paths whose installed copy was tampered with since the last pass.
        self.tampered: set[str] = set()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- looking at the source -------------------------------------------------

    def _source(self) -> tuple[dict[str, bytes], set[str]]:
        return walk(self.src)

    def _files(self) -> list[str]:
        return sorted(self._source()[0])

    def _dirs(self) -> list[str]:
        return sorted(self._source()[1])

    def _parents(self) -> list[str]:
        return ["", *(d for d in self._dirs() if d.count("/") + 2 <= MAX_DEPTH)]

    def _free(self, path: str) -> bool:
        return not (self.src / path).is_dir()

    def _content(self, data: st.DataObject, path: str, choices: tuple[str, ...] = ()) -> str:
        content = data.draw(st.sampled_from(choices or pool(path)), label="content")
        if content == FRESH:
            self.fresh += 1
            content = f"Title: f{self.fresh}\n\nfresh" if is_post(path) else f"fresh {self.fresh}"
        return content

    def _write(self, path: str, content: str) -> None:
        target = self.src / path
        target.write_bytes(content.encode("utf-8"))
        self.clock += 10**9
        os.utime(target, ns=(self.clock, self.clock))
        self.origin.pop(path, None)

    def _forget_subtree(self, root: str) -> None:
        for path in [p for p in self.origin if within(p, root)]:
            del self.origin[path]

    # -- rules: the source ----------------------------------------------------------

    @initialize(
        data=st.data(),
        paths=st.lists(
            st.tuples(st.sampled_from(["", "a"]), st.sampled_from(FILE_NAMES)).filter(
                lambda p: p != ("", "a")
            ),
            min_size=2,
            max_size=8,
            unique=True,
        ),
    )
    def start(self, data: st.DataObject, paths: list[tuple[str, str]]) -> None:
        """A first pass over a small tree, so that later rules find something to change."""
        (self.src / "a").mkdir()
        for parent, name in paths:
            path = join(parent, name)
            self._write(path, self._content(data, path))
        self._reconcile_and_check(full=False)

    @rule(data=st.data(), name=st.sampled_from(FILE_NAMES))
    def create_file(self, data: st.DataObject, name: str) -> None:
        path = join(data.draw(st.sampled_from(self._parents()), label="parent"), name)
        if self._free(path):
            self._write(path, self._content(data, path))

    @rule(data=st.data(), name=st.sampled_from(POST_NAMES))
    def create_post(self, data: st.DataObject, name: str) -> None:
        """A post with valid metadata, or with the invalid block of broken.md."""
        path = join(data.draw(st.sampled_from(self._parents()), label="parent"), name)
        if self._free(path):
            self._write(path, self._content(data, path, (*TITLED, INVALID, FRESH)))

    @precondition(lambda self: self._files())
    @rule(data=st.data())
    def edit_file(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(self._files()), label="file")
        self._write(path, self._content(data, path))

    def _empties_source(self, root: str) -> bool:
        """Whether deleting ``root`` leaves nothing but ignored names in the source."""
        files, dirs = self._source()
        return all(within(p, root) or is_ignored(name_of(p)) for p in (*files, *dirs))

    @precondition(lambda self: self._files())
    @rule(data=st.data(), may_empty=st.booleans())
    def delete_file(self, data: st.DataObject, may_empty: bool) -> None:
        path = data.draw(st.sampled_from(self._files()), label="file")
        if may_empty or not self._empties_source(path):
            (self.src / path).unlink()
            self.origin.pop(path, None)

    @precondition(lambda self: self._dirs())
    @rule(data=st.data(), may_empty=st.booleans())
    def delete_dir(self, data: st.DataObject, may_empty: bool) -> None:
        """Delete a directory tree; emptying the source (the guard's case) only sometimes."""
        path = data.draw(st.sampled_from(self._dirs()), label="dir")
        if may_empty or not self._empties_source(path):
            shutil.rmtree(self.src / path)
            self._forget_subtree(path)

    @precondition(lambda self: self._files())
    @rule(data=st.data(), name=st.sampled_from(FILE_NAMES + IGNORED_NAMES))
    def move_file(self, data: st.DataObject, name: str) -> None:
        """A rename or a move to another folder, also onto an existing file."""
        old = data.draw(st.sampled_from(self._files()), label="file")
        new = join(data.draw(st.sampled_from(self._parents()), label="parent"), name)
        if new == old or not self._free(new):
            return
        os.replace(self.src / old, self.src / new)
        came_from = self.origin.pop(old, None)
        self.origin.pop(new, None)
        if came_from is not None:
            self.origin[new] = came_from

    @precondition(lambda self: len(self._files()) >= 2)
    @rule(data=st.data())
    def swap_files(self, data: st.DataObject) -> None:
        a, b = data.draw(
            st.lists(st.sampled_from(self._files()), min_size=2, max_size=2, unique=True),
            label="files",
        )
        parking = self.src / ".swap"
        os.rename(self.src / a, parking)
        os.rename(self.src / b, self.src / a)
        os.rename(parking, self.src / b)
        came_a, came_b = self.origin.pop(a, None), self.origin.pop(b, None)
        if came_b is not None:
            self.origin[a] = came_b
        if came_a is not None:
            self.origin[b] = came_a

    @precondition(lambda self: self._dirs())
    @rule(data=st.data(), name=st.sampled_from(DIR_NAMES))
    def rename_dir(self, data: st.DataObject, name: str) -> None:
        old = data.draw(st.sampled_from(self._dirs()), label="dir")
        parents = [p for p in self._parents() if not within(p, old)]
        new = join(data.draw(st.sampled_from(parents), label="parent"), name)
        deepest = max((p.count("/") for p in self._files() if within(p, old)), default=0)
        if (self.src / new).exists() or deepest - old.count("/") + new.count("/") >= MAX_DEPTH:
            return
        os.rename(self.src / old, self.src / new)
        for path in [p for p in self.origin if within(p, old)]:
            self.origin[new + path[len(old) :]] = self.origin.pop(path)

    @rule(data=st.data(), name=st.sampled_from(DIR_NAMES))
    def make_dir(self, data: st.DataObject, name: str) -> None:
        path = join(data.draw(st.sampled_from(self._parents()), label="parent"), name)
        if not (self.src / path).exists():
            (self.src / path).mkdir()

    @rule(data=st.data(), name=st.sampled_from(IGNORED_NAMES))
    def add_ignored(self, data: st.DataObject, name: str) -> None:
        path = join(data.draw(st.sampled_from(self._parents()), label="parent"), name)
        if self._free(path):
            self._write(path, self._content(data, path))

    # -- rules: the blog folder, behind the controller's back ---------------------------

    @precondition(lambda self: self.dst.is_dir())
    @rule(data=st.data(), how=st.sampled_from(["stray", "overwrite", "delete"]))
    def tamper_with_blog_folder(self, data: st.DataObject, how: str) -> None:
        files = sorted(walk(self.dst)[0])
        if how == "stray":
            target = self.dst / data.draw(st.sampled_from(["zz-stray", "a.md"]), label="name")
            if target.exists():
                return
            target.write_bytes(b"stray")
        elif not files:
            return
        else:
            path = data.draw(st.sampled_from(files), label="file")
            if how == "overwrite":
                (self.dst / path).write_bytes(b"tampered")
            else:
                (self.dst / path).unlink()
            self.tampered.add(path)
        # Only a full pass is expected to notice: the next reconcile is a full one.
        self.drifted = True

    # -- rules: reconciling -------------------------------------------------------------

    @rule(full=st.booleans())
    def reconcile(self, full: bool) -> None:
        self._reconcile_and_check(full=full)

    @invariant()
    def no_temporaries_in_the_blog_folder(self) -> None:
        if self.dst.is_dir():
            leftovers = [
                os.path.join(d, n)
                for d, dirs, names in os.walk(self.dst)
                for n in dirs + names
                if n.startswith(TEMP_PREFIX)
            ]
            assert leftovers == []

    # -- the checks -----------------------------------------------------------------------

    def _reconcile_and_check(self, *, full: bool) -> None:
        files, dirs = self._source()
        wanted_dirs = {d for d in dirs if not is_ignored(name_of(d))}
        wanted = {p: b for p, b in files.items() if not is_ignored(name_of(p))}
        installed = walk(self.dst)[0] if self.dst.is_dir() else {}
        full = full or self.drifted

        if not wanted and not wanted_dirs and installed:
            # An empty listing must never wipe the blog: the guard refuses it.
            before = stats(self.dst)
            with pytest.raises(UnsafePlan):
                self.reconciler.reconcile(BLOG, full=full)
            assert stats(self.dst) == before
            event("empty listing refused")
            return

        report = self.reconciler.reconcile(BLOG, full=full)
        self.drifted = False
        for verb, count in report.actions.items():
            if count:
                event(f"pass with {verb}")
        if report.errors:
            event("pass with errors")

        self._check_mirror(wanted, wanted_dirs)
        self._check_entries(wanted)
        self._check_synced_rows(files, dirs)
        self._check_ids_follow_renames(wanted)

        before = stats(self.dst)
        again = self.reconciler.reconcile(BLOG)
        assert again.actions == {"set": 0, "move": 0, "drop": 0}, "(c) second pass acted"
        assert again.errors == 0, again.failures
        assert stats(self.dst) == before, "(c) second pass rewrote files"

        self.snapshot = wanted
        self.tampered = set()
        self.origin = {p: p for p in wanted}
        self.ids = {e.path: e.id for e in self.store.entries(BLOG) if not e.deleted}

    def _check_mirror(self, wanted: dict[str, bytes], wanted_dirs: set[str]) -> None:
        files, dirs = walk(self.dst)
        assert sorted(dirs) == sorted(wanted_dirs), "(a) directories differ"
        assert sorted(files) == sorted(wanted), "(a) file paths differ"
        for path, data in wanted.items():
            assert files[path] == data, f"(a) bytes differ at {path}"

    def _check_entries(self, wanted: dict[str, bytes]) -> None:
        live = [e for e in self.store.entries(BLOG) if not e.deleted]
        paths = Counter(e.path for e in live)
        assert [p for p, n in paths.items() if n > 1] == [], "(b) two live entries at a path"
        posts = {p for p in wanted if is_post(p)}
        valid = {p for p in posts if wanted[p].decode() != INVALID}
        assert set(paths) <= set(wanted), "(b) live entry at a path not in the source"
        assert set(paths) <= posts, "(b) live entry at a path that is not a post"
        assert valid <= set(paths), "(b) a post that builds has no live entry"
        for entry in live:
            content = wanted[entry.path].decode()
            if content == INVALID:
                continue  # a rejected post keeps its previous entry as it was
            assert entry.title == expected_title(entry.path, content), entry
            assert entry.draft == expected_draft(entry.path, content), entry

    def _check_synced_rows(self, files: dict[str, bytes], dirs: set[str]) -> None:
        synced = self.store.load_synced(BLOG)
        assert sorted(synced) == sorted(set(files) | dirs), "(b) synced rows differ from source"
        for path, row in synced.items():
            ignored = is_ignored(name_of(path))
            if ignored:
                expected = State.IGNORED
            elif path in files and is_post(path) and files[path].decode() == INVALID:
                expected = State.REJECTED
            else:
                expected = State.SYNCED
            assert row.state is expected, (path, row)

    def _check_ids_follow_renames(self, wanted: dict[str, bytes]) -> None:
        now = Counter(wanted.values())
        then = Counter(self.snapshot.values())
        live = {e.path: e.id for e in self.store.entries(BLOG) if not e.deleted}
        for new, old in self.origin.items():
            if new == old or new not in wanted or old not in self.ids or not is_post(new):
                continue
            if old in self.tampered:  # its installed copy no longer has that content
                continue
            content = wanted[new]
            if content and now[content] == 1 and then[content] == 1:
                assert live.get(new) == self.ids[old], f"(d) {old} -> {new} lost its entry id"
                event("entry id followed a rename")


# The CI profile's 300 examples would take minutes here: this test fixes its own
# example count (60 with CI=true, 25 otherwise); derandomize comes from the profile.
MACHINE_SETTINGS = settings(
    max_examples=60 if IN_CI else 25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.slow
def test_reconcile_state_machine() -> None:
    run_state_machine_as_test(ReconcileMachine, settings=MACHINE_SETTINGS)


# -- regressions for bugs found by the machine -----------------------------------


@pytest.fixture
def single_blog(tmp_path: Path) -> Iterator[tuple[Reconciler, Store, Path]]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.add_blog(
        BlogRecord(
            id=BLOG, source_kind="local", source_config={"location": str(src)}, folder=str(dst)
        )
    )
    yield Reconciler(store, Settings(data_dir=tmp_path, install_batch=7)), store, src
    store.close()


def _live(store: Store) -> dict[str, str]:
    return {e.path: e.title for e in store.entries(BLOG) if not e.deleted}


def _write(path: Path, text: str, mtime_s: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))


def test_renaming_a_post_to_a_non_post_name_retires_its_entry(single_blog) -> None:
    reconciler, store, src = single_blog
    (src / "a.md").write_text("Title: x\n\nhello")
    reconciler.reconcile(BLOG)
    assert _live(store) == {"a.md": "x"}
    os.rename(src / "a.md", src / "a")
    report = reconciler.reconcile(BLOG)
    assert report.actions["move"] == 1
    assert _live(store) == {}


def test_a_posts_content_copied_into_a_non_post_does_not_take_its_entry(single_blog) -> None:
    reconciler, store, src = single_blog
    _write(src / "a.md", "Title: x\n", 1_600_000_001)
    _write(src / "notes", "other\n", 1_600_000_002)
    reconciler.reconcile(BLOG)
    # Two edits, no rename: the post gets a new title and its old text is
    # pasted into a file that is not a post.
    _write(src / "notes", "Title: x\n", 1_600_000_003)
    _write(src / "a.md", "Title: y\n", 1_600_000_004)
    reconciler.reconcile(BLOG)
    assert _live(store) == {"a.md": "y"}


def test_swapping_two_posts_swaps_their_entries(single_blog) -> None:
    reconciler, store, src = single_blog
    _write(src / "a.md", "Title: A\n", 1_600_000_001)
    _write(src / "b.md", "Title: B\n", 1_600_000_002)
    reconciler.reconcile(BLOG)
    os.rename(src / "a.md", src / "swap")
    os.rename(src / "b.md", src / "a.md")
    os.rename(src / "swap", src / "b.md")
    # Copies make the contents ambiguous, so the swap is not inferred as moves.
    _write(src / "c.md", "Title: A\n", 1_600_000_003)
    _write(src / "d.md", "Title: B\n", 1_600_000_004)
    reconciler.reconcile(BLOG)
    assert _live(store) == {"a.md": "B", "b.md": "A", "c.md": "A", "d.md": "B"}


def test_restoring_an_older_version_of_a_post_updates_its_entry(single_blog) -> None:
    reconciler, store, src = single_blog
    post = src / "a.md"
    post.write_text("Title: new\n\nhello")
    os.utime(post, ns=(2_000_000_000 * 10**9, 2_000_000_000 * 10**9))
    reconciler.reconcile(BLOG)
    # Restore an older version with its original (older) mtime, as cp -p,
    # rsync -t, tar or a sync client's "restore previous version" do.
    post.write_text("Title: old\n\nhello")
    os.utime(post, ns=(1_900_000_000 * 10**9, 1_900_000_000 * 10**9))
    report = reconciler.reconcile(BLOG)
    assert report.actions["set"] == 1
    assert _live(store) == {"a.md": "old"}
