"""The executor: the only code that writes into a blog folder.

Installs are atomic and batched. A set streams the file into a temporary file
in the pass's staging directory (``.~ctl-stage-*`` at the folder's root, so on
the folder's file system) while hashing it, refuses it when the hash differs
from what the source promised, then a whole batch of temporaries is made
durable with one ``syncfs`` (instead of one ``fsync`` per small file), renamed
into place and made durable again before the store records it. A path in the
folder therefore always holds its old content or its new content, never a
partial file; a crash leaves only temporaries (``.~ctl-*``), which
:meth:`sweep` removes.

The staging directory is also a fence for the file system, which knows no
tokens: the next holder removes every staging directory before it writes
(:meth:`clear_staging`), so a holder that was frozen between its lease check
and its write finds its staging directory gone and cannot create, or rename
into place, anything more.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import queue
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from reconcilers.build import builders
from reconcilers.build.jobs import BuildJob, BuildRunner, Built, InlineBuilds
from reconcilers.core.plan import Build, Drop, Ignore, MakeDir, Move, Plan, Reject, Set
from reconcilers.core.tree import TEMP_PREFIX, Kind, Node, normalise_path, parent_of
from reconcilers.errors import (
    ControllerError,
    ExecutorError,
    InvalidPath,
    ResilientError,
    SourceError,
)
from reconcilers.hashing import ContentHasher
from reconcilers.outcomes import (
    ActionFailed,
    BuildCrash,
    BuildFailure,
    BuildResult,
    Dropped,
    FetchFailed,
    Installed,
    LocalStat,
    MadeDir,
    Moved,
    Outcome,
    Rebuilt,
    Recorded,
)
from reconcilers.sources.base import Source

log = logging.getLogger(__name__)

#: Posts up to this size are kept in memory between install and build.
KEEP_FOR_BUILD = 8 * 1024 * 1024
#: One per pass that installs files, at the root of the blog folder.
STAGING_PREFIX = f"{TEMP_PREFIX}stage-"


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


_SYNCFS = _load_syncfs()


class _HashingWriter:
    """Hashes what a source writes, on its way to the temporary file."""

    def __init__(self, target: BinaryIO, keep: bool) -> None:
        self.target = target
        self.keep = keep
        self.hasher = ContentHasher()
        self.chunks: list[bytes] | None = [] if keep else None

    def rewind(self) -> None:
        self.target.seek(0)
        self.target.truncate()
        self.hasher = ContentHasher()
        self.chunks = [] if self.keep else None

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        if self.chunks is not None:
            if self.hasher.size > KEEP_FOR_BUILD:
                self.chunks = None
            else:
                self.chunks.append(bytes(data))
        return self.target.write(data)


class _Staged:
    __slots__ = ("data", "node", "stat", "temp")

    def __init__(self, node: Node, temp: str, data: bytes | None, stat: LocalStat) -> None:
        self.node = node
        self.temp = temp
        self.data = data
        self.stat = stat


class Executor:
    def __init__(
        self,
        root: Path,
        source: Source,
        *,
        blog_id: str | None = None,
        batch_size: int = 500,
        workers: int = 4,
        builds: BuildRunner | None = None,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        self.workers = workers
        self.source = source
        self.blog_id = blog_id
        self.batch_size = batch_size
        #: Where builds run: the supervised pool in the controller, inline otherwise.
        self.builds: BuildRunner = builds or InlineBuilds()
        #: Called before each change to the folder; raises to stop the pass
        #: (a lost lease, a shutdown). Stopping there is as safe as a crash.
        self.checkpoint = checkpoint
        self._checked_dirs: set[str] = {""}
        self._staging: str | None = None
        #: Temporary names need only be unique inside this pass's own staging
        #: directory: a counter (atomic under the GIL), not a random read per file.
        self._temp_names = itertools.count()

    # -- paths -------------------------------------------------------------

    def _path(self, key: str) -> str:
        """The on-disk path for ``key``, refusing anything that could leave the folder."""
        try:
            if normalise_path(key) != key:
                raise InvalidPath("path is not normalised", path=key)
        except InvalidPath as exc:
            raise ExecutorError(exc.message, blog_id=self.blog_id, path=key) from None
        return os.path.join(self._root, key)

    def _check_dir(self, key: str) -> None:
        """Every directory on the way to ``key`` must be a real directory, not a symlink."""
        if key in self._checked_dirs:
            return
        self._check_dir(parent_of(key))
        try:
            st = os.lstat(os.path.join(self._root, key))
        except FileNotFoundError:
            raise ExecutorError(
                f"directory {key!r} is missing", blog_id=self.blog_id, path=key
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise ExecutorError(
                f"{key!r} is not a directory (a file is where a directory must be)",
                blog_id=self.blog_id,
                path=key,
            )
        self._checked_dirs.add(key)

    def _forget_dirs(self, key: str) -> None:
        self._checked_dirs = {
            d for d in self._checked_dirs if not (d == key or d.startswith(key + "/"))
        }
        self._checked_dirs.add("")

    # -- running a plan -------------------------------------------------------

    def run(self, plan: Plan) -> Iterator[list[Outcome]]:
        """Apply ``plan`` in order, yielding outcomes in batches the store commits."""
        try:
            yield from self._run(plan)
        finally:
            self._remove_staging()

    def _run(self, plan: Plan) -> Iterator[list[Outcome]]:
        instant: list[Outcome] = []
        pending_sets: list[Node] = []
        for action in plan:
            if isinstance(action, Set):
                if instant:
                    yield instant
                    instant = []
                pending_sets.append(action.node)
                if len(pending_sets) >= self.batch_size:
                    yield self.install(pending_sets)
                    pending_sets = []
                continue
            if pending_sets:
                yield self.install(pending_sets)
                pending_sets = []
            self.checkpoint()
            instant.append(self._instant(action))
        if pending_sets:
            yield self.install(pending_sets)
        if instant:
            yield instant

    def _instant(self, action: Drop | Move | MakeDir | Build | Ignore | Reject) -> Outcome:
        if isinstance(action, Drop):
            return self.drop(action)
        if isinstance(action, Move):
            return self.move(action)
        if isinstance(action, MakeDir):
            return self.make_dir(action.node)
        if isinstance(action, Build):
            return self.rebuild(action.node)
        if isinstance(action, Ignore):
            return Recorded(action.node, ignored=True)
        return Recorded(action.node, ignored=False, message=action.message)

    def drop(self, action: Drop) -> Outcome:
        if not action.on_disk:
            return Dropped(action.path, action.kind, on_disk=False)
        try:
            target = self._path(action.path)
            self._check_dir(parent_of(action.path))
            st = os.lstat(target)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(target)
                self._forget_dirs(action.path)
            else:
                os.unlink(target)
        except FileNotFoundError:
            pass
        except (OSError, ExecutorError) as exc:
            return ActionFailed("drop", action.path, _message(exc))
        return Dropped(action.path, action.kind, on_disk=True)

    def move(self, action: Move) -> Outcome:
        try:
            src, dst = self._path(action.src), self._path(action.dst)
            self._check_dir(parent_of(action.src))
            self._check_dir(parent_of(action.dst))
            if action.kind is Kind.DIR and os.path.lexists(dst):
                raise ExecutorError("the target directory already exists", path=action.dst)
            os.rename(src, dst)
        except (OSError, ExecutorError) as exc:
            return ActionFailed("move", action.src, _message(exc), dst=action.dst)
        if action.kind is Kind.DIR:
            self._forget_dirs(action.src)
        return Moved(action.src, action.dst, action.kind)

    def make_dir(self, node: Node) -> Outcome:
        try:
            target = self._path(node.path)
            self._check_dir(parent_of(node.path))
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            if not os.path.isdir(target):
                os.mkdir(target)
        except (OSError, ExecutorError) as exc:
            return ActionFailed("mkdir", node.path, _message(exc))
        return MadeDir(node)

    # -- installs ------------------------------------------------------------

    def install(self, nodes: list[Node]) -> list[Outcome]:
        """Fetch, verify, make durable and rename a batch of files; then build them.

        Fetches run on a few threads: creating small files is dominated by
        system-call latency, which threads overlap even under the GIL.
        """
        outcomes: list[Outcome] = []
        staged: list[_Staged] = []
        installed: list[tuple[_Staged, LocalStat]] = []
        stopped: ControllerError | None = None
        try:
            staging = self._open_staging()
            for result in self._stage_all(nodes, staging):
                if isinstance(result, _Staged):
                    staged.append(result)
                elif isinstance(result, ControllerError):
                    stopped = stopped or result
                else:
                    outcomes.append(result)
            if stopped is not None:
                raise stopped  # every temporary file is known now: the finally removes them
            self._make_durable([s.temp for s in staged])
            self.checkpoint()
            for item in staged:
                try:
                    os.rename(item.temp, self._path(item.node.path))
                except (OSError, ExecutorError) as exc:
                    outcomes.append(FetchFailed(item.node, _message(exc)))
                    continue
                installed.append((item, item.stat))
            self._make_durable([])
        finally:
            renamed = {id(item) for item, _ in installed}
            for item in staged:
                if id(item) not in renamed:
                    _unlink_quietly(item.temp)
        built = self._build_all([(item.node, item.data) for item, _ in installed])
        for (item, local), entry in zip(installed, built, strict=True):
            outcomes.append(Installed(item.node, local, entry))
        return outcomes

    def _stage_all(
        self, nodes: list[Node], staging: str
    ) -> list[_Staged | FetchFailed | ControllerError]:
        """Stage ``nodes`` on ``workers`` threads that take the next file as they free up.

        One task per thread, not per file: a future per file (its lock and
        condition) was a tenth of the GIL's time in a first sync of small files.
        """
        results: list[_Staged | FetchFailed | ControllerError | None] = [None] * len(nodes)
        todo: queue.SimpleQueue[tuple[int, Node]] = queue.SimpleQueue()
        for item in enumerate(nodes):
            todo.put(item)

        def work() -> None:
            while True:
                try:
                    i, node = todo.get_nowait()
                except queue.Empty:
                    return
                results[i] = self._stage(node, staging)

        threads = max(1, min(self.workers, len(nodes)))
        with ThreadPoolExecutor(threads) as pool:
            for task in [pool.submit(work) for _ in range(threads)]:
                task.result()
        return [r for r in results if r is not None]

    def _stage(self, node: Node, staging: str) -> _Staged | FetchFailed | ControllerError:
        try:
            # Before each file: a holder that lost its lease writes nothing more.
            self.checkpoint()
        except ControllerError as exc:
            return exc
        try:
            self._path(node.path)
            self._check_dir(parent_of(node.path))
        except ExecutorError as exc:
            return FetchFailed(node, exc.message, transient=False)
        temp = os.path.join(staging, f"{TEMP_PREFIX}set-{next(self._temp_names)}")
        keep = builders.is_post(node.path)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                writer = _HashingWriter(handle, keep)
                self.source.fetch(node, writer)
                handle.flush()
                if node.mtime_ns:
                    os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))
                st = os.fstat(fd)
            if node.content_hash is not None and writer.hasher.hexdigest() != node.content_hash:
                _unlink_quietly(temp)
                return FetchFailed(node, "content changed while fetching (hash mismatch)")
        except SourceError as exc:
            _unlink_quietly(temp)
            return FetchFailed(node, exc.message)
        except OSError as exc:
            _unlink_quietly(temp)
            return FetchFailed(node, f"cannot write into the blog folder: {exc.strerror}")
        data = b"".join(writer.chunks) if writer.chunks is not None else None
        return _Staged(node, temp, data, LocalStat(st.st_ino, st.st_size, st.st_mtime_ns))

    def _make_durable(self, files: list[str]) -> None:
        if _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) == 0:
                    return
            finally:
                os.close(fd)
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- builds --------------------------------------------------------------

    def _build_all(self, items: list[tuple[Node, bytes | None]]) -> list[BuildResult]:
        """Build the posts among ``items`` as one batch (in parallel when pooled)."""
        rules = builders.current()
        results: list[BuildResult] = [None] * len(items)
        jobs, where = [], []
        for n, (node, data) in enumerate(items):
            name = rules.builder_for(node.path)
            if name is not None:
                path = os.path.join(self._root, node.path)
                jobs.append(BuildJob(node.path, name, data, path, node.content_hash))
                where.append(n)
        if jobs:
            for n, answer in zip(where, self.builds.run(jobs), strict=True):
                results[n] = self._judge(items[n][0], answer)
        return results

    def _judge(self, node: Node, answer: Built | BaseException) -> BuildResult:
        if isinstance(answer, Built):
            if node.content_hash is not None and answer.built_hash != node.content_hash:
                return BuildCrash("the file changed during its build; it is built again")
            if answer.error is not None:
                return BuildFailure(answer.error, answer.line)
            return answer.draft
        if isinstance(answer, ResilientError):
            return BuildCrash(f"build {answer.message}")
        if isinstance(answer, OSError):
            return BuildCrash(f"cannot read the installed file: {answer.strerror}")
        log.error(
            "builder raised",
            exc_info=answer,
            extra={"blog": self.blog_id, "path": node.path, "action": "build"},
        )
        return BuildCrash(f"build raised {type(answer).__name__}: {answer}")

    def rebuild(self, node: Node) -> Outcome:
        [result] = self._build_all([(node, None)])
        return Rebuilt(node, result)

    def rebuild_all(self, nodes: list[Node]) -> list[Outcome]:
        """Several rebuilds as one batch, so a pool builds them in parallel."""
        results = self._build_all([(node, None) for node in nodes])
        return [Rebuilt(n, r) for n, r in zip(nodes, results, strict=True)]

    # -- staging -----------------------------------------------------------------

    def _open_staging(self) -> str:
        if self._staging is None:
            self.checkpoint()
            path = os.path.join(self._root, f"{STAGING_PREFIX}{secrets.token_hex(6)}")
            try:
                os.mkdir(path, 0o700)
            except OSError as exc:
                raise ExecutorError(
                    f"cannot write into the blog folder {self._root}: {exc.strerror}",
                    blog_id=self.blog_id,
                ) from None
            self._staging = path
        return self._staging

    def _remove_staging(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def clear_staging(self) -> int:
        """Remove the staging directories of earlier holders; returns how many.

        One listing of the folder's root: cheap enough to run before every pass.
        """
        removed = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self._root) as entries:
            for entry in entries:
                if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1
        return removed

    # -- housekeeping -----------------------------------------------------------

    def sweep(self) -> int:
        """Remove temporaries a crashed pass left behind; returns how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory, dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    _unlink_quietly(os.path.join(directory, name))
                    removed += 1
            for name in [d for d in dirs if d.startswith(TEMP_PREFIX)]:
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
                dirs.remove(name)
                removed += 1
        self._checked_dirs = {""}
        return removed

    def scan(self) -> dict[str, tuple[Kind, LocalStat]]:
        """Everything in the blog folder, by key (for full validation)."""
        found: dict[str, tuple[Kind, LocalStat]] = {}
        root = str(self.root)
        for directory, dirs, files in os.walk(root):
            rel = os.path.relpath(directory, root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in dirs + files:
                st = os.lstat(os.path.join(directory, name))
                kind = Kind.DIR if stat.S_ISDIR(st.st_mode) else Kind.FILE
                found[prefix + name] = (kind, LocalStat(st.st_ino, st.st_size, st.st_mtime_ns))
        return found


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ExecutorError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return str(exc)
