"""Crash safety: real ``controller reconcile`` processes killed with SIGKILL.

A blog whose local source holds 2,000 small files in nested folders (a tenth of
them Markdown posts, half of those titled only by their file name, some under
``drafts/`` folders, and two with invalid metadata) is synced once cleanly.
Then, round after round, a seeded RNG changes the source (edits, adds, deletes,
file renames, a folder renamed or moved, sometimes a folder deleted) and a real
``controller reconcile --blog B --json --wait 30`` process is started and
killed with SIGKILL after a delay drawn from the same seed in the window where
a process works: 0.2 s up to the wall time (startup + pass) of the clean sync.
Rounds whose process finishes before its delay are not kill points; rounds go
on until the wanted number of kills was delivered. The killed processes use
either the default install batch or a small one (many store commits per pass).

After every round, every file in the blog folder other than a ``.~ctl-``
temporary holds complete bytes that some source file once held (never a
partial file). After the last kill, one clean ``--full`` pass and then a clean
ordinary pass must leave:

- the blog folder byte-identical to the source, with no ``.~ctl-`` temporary;
- every file ``synced`` except the two invalid posts, ``rejected``;
- exactly one live entry per valid post, none for a deleted post, each with the
  title and draft flag its current content and path give it, and the ids of
  posts never edited, moved or deleted unchanged since the first clean sync;
- nothing more to do: 0 set / 0 move / 0 drop (also on a further ``--full``).

The SQLite lease of a killed holder stays in the store with its dead pid; the
controller frees leases of dead local processes, so no process may wait for
the 30 s TTL: the time each process takes to acquire the lease is bounded.

Kill points: ``CONTROLLER_CRASH_KILLS`` (default 50 when ``CI=true``, else 12).
The seed is random unless ``CONTROLLER_CRASH_SEED`` is set; it is printed and
is part of every assertion message. A seed replays the source changes and the
delays; where a kill lands still depends on timing. Run with ``-s`` to watch.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import controller_env

pytestmark = pytest.mark.slow

CONTROLLER = Path(sys.executable).with_name("controller")
COMMAND = [str(CONTROLLER)] if CONTROLLER.exists() else [sys.executable, "-m", "controller"]

IN_CI = os.environ.get("CI", "").lower() == "true"
KILLS = int(os.environ.get("CONTROLLER_CRASH_KILLS") or (50 if IN_CI else 12))
SEED = int(os.environ.get("CONTROLLER_CRASH_SEED") or random.SystemRandom().randrange(2**32))

BLOG = "crash"
TEMP_PREFIX = ".~ctl-"
FILES = 2000
POST_SHARE = 0.1
OTHER_SUFFIXES = (".css", ".js", ".json", ".png", ".svg", ".dat")
#: Posts whose metadata can never build; nothing mutates them or their folder.
INVALID = {
    "bad/one.md": b"foo: bar: baz\nxyz\n",
    "bad/deeper/two.md": b"foo: bar: baz\nxyz\nnot metadata either\n",
}
PROTECTED = "bad"
#: The posts first created under this folder are never edited, moved or deleted,
#: and neither it nor a folder below it is renamed or deleted, so that enough
#: entry ids are known to have to survive every crash (elsewhere, posts stay
#: untouched only by chance).
STABLE = "d0"
NO_ACTIONS = {"set": 0, "move": 0, "drop": 0}
#: Install batch sizes for the killed processes, drawn per round: the default
#: (1000: a pass stages, renames and records its files in one or two batches)
#: and a small one (many store commits per pass, so many crash points between
#: a rename into the blog folder and the transaction that records it).
INSTALL_BATCHES = ("1000", "50")
#: A process not meant to be killed must end within this time.
HANG_S = 120.0
#: A process that finds the lease of a dead holder must not wait for its TTL
#: (30 s): it may take this long past the measured startup to acquire it.
LEASE_SLACK_S = 15.0


def _ctx() -> str:
    return f"[seed {SEED}; replay with CONTROLLER_CRASH_SEED={SEED}]"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _walk(root: Path) -> tuple[dict[str, Path], set[str]]:
    """Files (relative path -> path) and directories (relative paths) under ``root``."""
    files: dict[str, Path] = {}
    dirs: set[str] = set()
    for directory, subdirs, names in os.walk(root):
        rel = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs.update(prefix + name for name in subdirs)
        files.update((prefix + name, Path(directory, name)) for name in names)
    return files, dirs


def _files(root: Path) -> dict[str, Path]:
    return _walk(root)[0]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _expected_entry(path: str, data: bytes) -> tuple[str, bool]:
    """The title and draft flag a post's entry must show, from its content and path."""
    first = data.decode().split("\n", 1)[0]
    name = path.rpartition("/")[2]
    title = first.removeprefix("Title: ") if first.startswith("Title: ") else name[:-3]
    return title, "drafts" in path.split("/")[:-1]


# -- the source and its seeded mutations -----------------------------------------


class Source:
    """The blog's local source folder, changed only by a seeded RNG.

    Tracks which of the posts present at the first clean sync were never
    edited, moved or deleted (their entry ids must survive every crash) and
    the digest of every content any source file ever had (so that a file in
    the blog folder can be told complete or partial after a kill).
    """

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.counter = 0
        #: Current post path -> the original path it was at the first sync.
        self.origin: dict[str, str] = {}
        self.touched: set[str] = set()
        self.ever: set[str] = set()
        self.kept: set[str] = set()

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _content(self, path: str) -> bytes:
        if not path.endswith(".md"):
            return self.rng.randbytes(self.rng.randint(16, 600))
        n = self._name("")
        tags = ", ".join(self.rng.sample(["a", "b", "c", "d", "e"], 2))
        body = " ".join(self.rng.choice(["lorem", "ipsum", "dolor", "sit"]) for _ in range(9))
        if self.rng.random() < 0.5:
            meta = f"Title: Post {n}\nDate: 2024-01-02\nTags: {tags}"
            return f"{meta}\n\n# Post {n}\n\n{body}\n".encode()
        # No title and no heading: the entry's title is the file's name.
        return f"Date: 2024-01-02\nTags: {tags}\n\n{body} {n}\n".encode()

    def _new_file(self, directory: str) -> str:
        if self.rng.random() < POST_SHARE:
            name = self._name("post-") + ".md"
        else:
            name = self._name("file-") + self.rng.choice(OTHER_SUFFIXES)
        return f"{directory}/{name}" if directory else name

    def _write(self, path: str) -> None:
        data = self._content(path)
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.ever.add(_digest(data))

    def _touch(self, path: str) -> None:
        original = self.origin.pop(path, None)
        if original is not None:
            self.touched.add(original)

    def _touch_tree(self, root: str) -> None:
        """Posts at or under ``root`` moved or went away."""
        for path in [p for p in self.origin if p == root or p.startswith(root + "/")]:
            self._touch(path)

    def create(self) -> None:
        for path, data in INVALID.items():
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_bytes(data)
            self.ever.add(_digest(data))
        dirs = [""]
        for a in range(6):
            dirs.append(f"d{a}")
            for b in range(4):
                dirs.append(f"d{a}/s{b}")
                dirs.extend(f"d{a}/s{b}/t{c}" for c in range(3))
        # Posts in a folder named drafts are drafts: renaming such a folder publishes them.
        dirs += ["d1/drafts", "d3/s2/drafts", "d5/s0/t1/drafts"]
        for _ in range(FILES):
            self._write(self._new_file(self.rng.choice(dirs)))
        self.origin = {p: p for p in self.posts()}
        self.kept = {p for p in self.origin if _under(p, STABLE)}

    def posts(self) -> set[str]:
        """Paths of valid posts."""
        return {p for p in _files(self.root) if p.endswith(".md") and p not in INVALID}

    def _listing(self) -> tuple[list[str], list[str]]:
        """Files and folders that mutations may touch (one walk)."""
        files: list[str] = []
        dirs: list[str] = []
        for directory, subdirs, names in os.walk(self.root):
            rel = os.path.relpath(directory, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel
            if _under(rel, PROTECTED):
                subdirs.clear()
                continue
            if rel:
                dirs.append(rel)
            files.extend(f"{rel}/{name}" if rel else name for name in names)
        return sorted(files), sorted(dirs)

    def mutate(self) -> Counter[str]:
        """One round of changes; returns what it did."""
        rng = self.rng
        done: Counter[str] = Counter()
        files, dirs = self._listing()
        n = len(files)
        files = [f for f in files if f not in self.kept]
        edits = int(n * rng.choice((0.05, 0.1, 0.2, 0.3)))
        picked = rng.sample(files, edits + rng.randint(n // 200, n // 40))
        for path in picked[:edits]:
            self._write(path)
            self._touch(path)
            done["edit"] += 1
        for path in picked[edits:]:
            (self.root / path).unlink()
            self._touch(path)
            done["delete"] += 1
        for _ in range(rng.randint(n // 100, n // 30)):
            directory = rng.choice(dirs)
            if rng.random() < 0.05:
                directory = f"{directory}/{self._name('new-')}"
            self._write(self._new_file(directory))
            done["add"] += 1
        # Files renamed (sometimes into another folder), keeping inode and mtime.
        files, dirs = self._listing()
        movable = [f for f in files if f not in self.kept]
        posts = [f for f in movable if f.endswith(".md")]
        for _ in range(rng.randint(1, 3)):
            # Mostly posts: a post without a title is named after its file.
            src = rng.choice(posts if posts and rng.random() < 0.6 else movable)
            if not (self.root / src).exists():
                continue
            directory = src.rpartition("/")[0] if rng.random() < 0.5 else rng.choice(dirs)
            dst = f"{directory}/{self._name('moved-')}{src[src.rfind('.') :]}".lstrip("/")
            (self.root / src).rename(self.root / dst)
            self._touch_tree(src)
            done["rename file"] += 1
        # A whole folder renamed in place, or moved under another folder.
        if rng.random() < 0.8:
            src = rng.choice([d for d in dirs if not _under(d, STABLE)])
            parent = src.rpartition("/")[0]
            if rng.random() < 0.3:
                parent = rng.choice(
                    ["", *(d for d in dirs if d != src and not d.startswith(src + "/"))]
                )
            dst = f"{parent}/{self._name('dir-')}".lstrip("/")
            if rng.random() < 0.15 and not (self.root / parent / "drafts").exists():
                dst = f"{parent}/drafts".lstrip("/")
            (self.root / src).rename(self.root / dst)
            self._touch_tree(src)
            done["rename folder"] += 1
        # Sometimes a small folder deleted whole.
        if rng.random() < 0.3:
            files, dirs = self._listing()
            sizes = Counter(a for f in files for a in _ancestors(f))
            small = [d for d in dirs if sizes[d] <= n // 50 and not _under(d, STABLE)]
            if small:
                victim = rng.choice(small)
                shutil.rmtree(self.root / victim)
                self._touch_tree(victim)
                done["delete folder"] += 1
        return done


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


# -- running the controller --------------------------------------------------------


@dataclass
class Run:
    """One ``controller`` process: how it ended and what its JSON log says."""

    started: float
    wall: float
    killed: bool
    returncode: int
    stdout: str
    stderr: str
    logs: list[dict[str, Any]] = field(default_factory=list)

    def first(self, message: str) -> dict[str, Any] | None:
        return next((line for line in self.logs if line.get("message") == message), None)

    @property
    def acquired_after(self) -> float | None:
        """Seconds from the start of the process to its lease."""
        line = self.first("lease acquired")
        return None if line is None else float(line["ts"]) - self.started

    @property
    def phase(self) -> str:
        """Where the process was when it ended."""
        if self.first("lease acquired") is None:
            return "starting"
        if self.first("reconciled") is None:
            return "in pass"
        if self.first("lease released") is None:
            return "recording"
        return "exiting"

    @property
    def last_line(self) -> str:
        """The error a failed process ended with (the last line of its stderr)."""
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else "(no output)"

    @property
    def freed_dead_lease(self) -> bool:
        return self.first("lease of a dead process freed") is not None


class Controller:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.env = controller_env(tmp_path)
        self.count = 0

    def run(self, *args: str, kill_after: float | None = None, **env: str) -> Run:
        """Run ``controller --log-format json -v ARGS``; SIGKILL it after ``kill_after`` s."""
        self.count += 1
        out = self.tmp_path / f"run-{self.count}.out"
        err = self.tmp_path / f"run-{self.count}.err"
        command = [*COMMAND, "--log-format", "json", "-v", *args]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started, clock = time.time(), time.monotonic()
            proc = subprocess.Popen(command, env={**self.env, **env}, stdout=stdout, stderr=stderr)
            hung = False
            try:
                proc.wait(timeout=HANG_S if kill_after is None else kill_after)
            except subprocess.TimeoutExpired:
                hung = kill_after is None
            finally:
                # SIGKILL to this process only (a no-op when it has just finished); then
                # reap it, so that its pid does not linger as a zombie that seems to hold
                # the lease.
                proc.kill()
                proc.wait()
            wall = time.monotonic() - clock
        assert not hung, f"{_ctx()} controller {' '.join(args)} still ran after {HANG_S} s"
        stderr_text = err.read_text(errors="replace")
        logs = []
        for line in stderr_text.splitlines():
            try:
                logs.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by the kill, or a traceback
        return Run(
            started=started,
            wall=wall,
            killed=proc.returncode == -9,
            returncode=proc.returncode,
            stdout=out.read_text(errors="replace"),
            stderr=stderr_text,
            logs=logs,
        )

    def ok(self, *args: str) -> Run:
        run = self.run(*args)
        assert run.returncode == 0, (
            f"{_ctx()} controller {' '.join(args)} failed, exit {run.returncode}: "
            f"{run.last_line}\n{run.stderr[-4000:]}"
        )
        return run

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def reconcile(self, *extra: str) -> tuple[dict[str, Any], Run]:
        run = self.ok("reconcile", "--blog", BLOG, "--json", "--wait", "30", *extra)
        report = json.loads(run.stdout)
        assert set(report) == {"blog", "actions", "errors", "passes", "seconds"}, _ctx()
        return report, run


class History:
    """What the store recorded since the last look (diagnostics only: where kills land)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.last = 0

    def news(self) -> dict[str, int]:
        try:
            with closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)) as conn:
                rows = conn.execute(
                    "SELECT id, action FROM history WHERE id > ? ORDER BY id", (self.last,)
                ).fetchall()
        except sqlite3.Error as exc:
            return {f"unreadable: {exc}": 1}
        if rows:
            self.last = rows[-1][0]
        return dict(Counter(action for _, action in rows))


# -- checks ---------------------------------------------------------------------------


def _temporaries(root: Path) -> list[str]:
    files, dirs = _walk(root)
    return sorted(p for p in [*files, *dirs] if p.rpartition("/")[2].startswith(TEMP_PREFIX))


class PartialFiles:
    """Finds files in the blog folder whose bytes no source file ever held.

    A file already found complete is not read again while its inode, size,
    mtime and ctime stay the same (any write or rename changes the ctime).
    """

    def __init__(self, folder: Path, ever: set[str]) -> None:
        self.folder = folder
        self.ever = ever
        self.complete: set[tuple[str, int, int, int, int]] = set()

    def __call__(self) -> list[str]:
        partial = []
        for path, file in _files(self.folder).items():
            if file.name.startswith(TEMP_PREFIX):
                continue
            st = file.lstat()
            key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if key in self.complete:
                continue
            if _digest(file.read_bytes()) in self.ever:
                self.complete.add(key)
            else:
                partial.append(path)
        return sorted(partial)


def _tree_differences(src: Path, folder: Path) -> list[str]:
    problems: list[str] = []
    (want, want_dirs), (have, have_dirs) = _walk(src), _walk(folder)
    problems += [f"missing file {p}" for p in sorted(want.keys() - have.keys())]
    problems += [f"extra file {p}" for p in sorted(have.keys() - want.keys())]
    problems += [
        f"different bytes at {p}"
        for p in sorted(want.keys() & have.keys())
        if want[p].read_bytes() != have[p].read_bytes()
    ]
    problems += [f"missing directory {d}" for d in sorted(want_dirs - have_dirs)]
    problems += [f"extra directory {d}" for d in sorted(have_dirs - want_dirs)]
    return problems


def _shown(items: list[str], limit: int = 20) -> str:
    more = f"\n... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n".join(items[:limit]) + more


# -- the test -----------------------------------------------------------------------------


def test_sigkilled_reconciles_leave_a_blog_that_one_clean_pass_converges(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    print(f"\ncrash test: seed {SEED}, {KILLS} kills {_ctx()}")
    source = Source(tmp_path / "src", random.Random(f"{SEED}:source"))
    delays = random.Random(f"{SEED}:delays")
    folder = tmp_path / "blog"
    source.create()
    print(f"source created in {time.monotonic() - began:.1f} s")
    controller = Controller(tmp_path)
    controller.ok("blog", "add", BLOG, "--source", f"local:{source.root}", "--folder", str(folder))

    # The first clean sync: the entry ids to keep, and how long a process works.
    _, first = controller.reconcile()
    startup = first.acquired_after
    assert startup is not None, f"{_ctx()} no 'lease acquired' line:\n{first.stderr[-2000:]}"

    def check_lease(run: Run, what: str) -> None:
        """No process may wait for the lease of a killed one to expire."""
        if run.acquired_after is not None:
            assert run.acquired_after < startup + LEASE_SLACK_S, (
                f"{_ctx()} {what}: the process waited {run.acquired_after:.1f} s for the "
                f"lease (the clean sync had it after {startup:.1f} s): the lease of a killed "
                f"holder was not reclaimed\n{run.stderr[-3000:]}"
            )

    # Kill delays: from 0.2 s to the end of a pass (startup + the time the lease was held).
    released = first.first("lease released")
    assert released is not None, f"{_ctx()} no 'lease released' line:\n{first.stderr[-2000:]}"
    working = float(released["ts"]) - first.started
    window = (0.2, max(working, 0.5))
    print(
        f"clean sync of {len(_files(source.root))} files: {first.wall:.2f} s, lease after "
        f"{startup:.2f} s, released after {working:.2f} s; kill delays in "
        f"[{window[0]:.2f}, {window[1]:.2f}] s"
    )
    assert _tree_differences(source.root, folder) == [], _ctx()
    initial_ids = {
        e["path"]: e["id"] for e in controller.json("entries", "--blog", BLOG) if not e["deleted"]
    }
    assert set(initial_ids) == source.posts(), _ctx()

    setup = time.monotonic() - began
    kills = 0
    rounds = 0
    phases: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    max_temporaries = 0
    partial_files = PartialFiles(folder, source.ever)
    history = History(tmp_path / "data" / "controller.db")
    history.news()
    freed = 0
    slowest_lease = 0.0
    while kills < KILLS:
        round_began = time.monotonic()
        rounds += 1
        assert rounds <= 20 * KILLS, f"{_ctx()} only {kills} of {rounds} processes were killed"
        done = source.mutate()
        changes.update(done)
        delay = round(delays.uniform(*window), 3)
        batch = delays.choice(INSTALL_BATCHES)
        run = controller.run(
            "reconcile",
            "--blog",
            BLOG,
            "--json",
            "--wait",
            "30",
            kill_after=delay,
            CONTROLLER_INSTALL_BATCH=batch,
        )
        check_lease(run, f"round {rounds}")
        slowest_lease = max(slowest_lease, run.acquired_after or 0.0)
        freed += run.freed_dead_lease
        temporaries = _temporaries(folder) if folder.exists() else []
        max_temporaries = max(max_temporaries, len(temporaries))
        partial = partial_files()
        assert partial == [], (
            f"{_ctx()} round {rounds}: files in the blog folder hold bytes no source file "
            f"ever had (partial writes):\n{_shown(partial)}"
        )
        if run.killed:
            kills += 1
            phases[run.phase] += 1
            print(
                f"kill {kills:>3}/{KILLS} (round {rounds}, batch {batch}): delay {delay:.3f} s, "
                f"{run.phase}, recorded {history.news()}, {len(temporaries)} temporaries left; "
                f"round took {time.monotonic() - round_began:.2f} s"
            )
        else:
            phases["finished first"] += 1
            assert run.returncode == 0, (
                f"{_ctx()} round {rounds}: reconcile failed, exit {run.returncode}: "
                f"{run.last_line}\n{run.stderr[-4000:]}"
            )
            print(
                f"round {rounds} (batch {batch}): delay {delay:.3f} s, finished first in "
                f"{run.wall:.2f} s, recorded {history.news()}; "
                f"round took {time.monotonic() - round_began:.2f} s"
            )
    killing = time.monotonic() - began - setup
    holding = phases["in pass"] + phases["recording"]
    assert holding >= KILLS // 20, (
        f"{_ctx()} only {holding} of {kills} kills landed while a process held the lease "
        f"({dict(phases)}): the kill window misses the passes"
    )

    # Clean passes: --full repairs whatever the kills left, then nothing is left to do.
    repair, run = controller.reconcile("--full")
    check_lease(run, "the clean --full pass after the last kill")
    settled, _ = controller.reconcile()
    validated, _ = controller.reconcile("--full")
    print(f"clean passes done at {time.monotonic() - began:.1f} s (repair took {run.wall:.1f} s)")

    problems = _tree_differences(source.root, folder)
    assert problems == [], f"{_ctx()} the blog folder differs from the source:\n{_shown(problems)}"
    assert _temporaries(folder) == [], f"{_ctx()} temporaries left: {_temporaries(folder)}"

    status = controller.json("status", "--blog", BLOG)
    states = {item["path"]: item["state"] for item in status["files"]}
    assert len(states) == len(status["files"]), f"{_ctx()} a path is listed twice in status"
    assert set(states) == set(_files(source.root)), (
        f"{_ctx()} status lists other files than the source: "
        f"missing {sorted(set(_files(source.root)) - set(states))[:20]}, "
        f"extra {sorted(set(states) - set(_files(source.root)))[:20]}"
    )
    wrong = sorted(
        f"{path}: {state}"
        for path, state in states.items()
        if state != ("rejected" if path in INVALID else "synced")
    )
    assert wrong == [], f"{_ctx()} files in the wrong state:\n{_shown(wrong)}"

    entries = controller.json("entries", "--blog", BLOG)
    live = [e for e in entries if not e["deleted"]]
    paths = Counter(e["path"] for e in live)
    duplicated = sorted(p for p, n in paths.items() if n > 1)
    assert duplicated == [], f"{_ctx()} two live entries at one path:\n{_shown(duplicated)}"
    posts = source.posts()
    assert set(paths) - posts == set(), (
        f"{_ctx()} live entries of posts the source no longer has:\n"
        f"{_shown(sorted(set(paths) - posts))}"
    )
    assert posts - set(paths) == set(), (
        f"{_ctx()} posts without a live entry:\n{_shown(sorted(posts - set(paths)))}"
    )
    # Titles of posts without metadata come from the file name, and posts under a
    # drafts/ folder are drafts: an entry that still shows another path's values
    # was moved in the store but never rebuilt for its new path.
    stale = sorted(
        f"{e['path']}: title {e['title']!r}, draft {e['draft']}; expected {expected}"
        for e in live
        if (e["title"], e["draft"])
        != (expected := _expected_entry(e["path"], (source.root / e["path"]).read_bytes()))
    )
    assert stale == [], (
        f"{_ctx()} entries that do not match their post's content and path: probably a move was "
        f"recorded but the rebuild of its posts was not (a kill between the two commits "
        f"in Reconciler._execute), and no later pass rebuilds them:\n{_shown(stale)}"
    )
    ids = Counter(e["id"] for e in live)
    assert all(n == 1 for n in ids.values()), f"{_ctx()} one entry id on two live paths"
    by_path = {e["path"]: e["id"] for e in live}
    untouched = sorted(set(initial_ids) - source.touched)
    changed_ids = [p for p in untouched if by_path.get(p) != initial_ids[p]]
    assert changed_ids == [], (
        f"{_ctx()} posts never edited, moved or deleted got another entry id:\n"
        f"{_shown(changed_ids)}"
    )
    assert settled["actions"] == NO_ACTIONS and settled["errors"] == 0, (
        f"{_ctx()} the second clean pass still had work: {settled}"
    )
    assert validated["actions"] == NO_ACTIONS, f"{_ctx()} a further --full pass: {validated}"

    total = time.monotonic() - began
    print(
        f"crash test seed {SEED}: {kills} kills in {rounds} rounds ({dict(phases)}); "
        f"source changes {dict(changes)}; up to {max_temporaries} temporaries after a kill; "
        f"{freed} dead leases freed, slowest lease after {slowest_lease:.2f} s; "
        f"repair pass {repair['actions']} in {repair['seconds']:.2f} s; "
        f"{len(untouched)} of {len(initial_ids)} first posts untouched; "
        f"setup took {setup:.1f} s, the kills {killing:.1f} s, the whole test {total:.1f} s"
    )
