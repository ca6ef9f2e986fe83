"""Recording what the executor achieved: synced rows, entries and history.

One call records one batch in the caller's transaction. Every state change of
a file row goes through the shared state machine, so an impossible sequence
(building a file that was never fetched) raises instead of being stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from controller.store import entries
from controller.store.models import HISTORY, SYNCED
from controller.store.sql import chunks, in_subtree, rebased, upsert
from reconcilers.build import EntryDraft, is_post
from reconcilers.core.machine import MACHINE, State, Trigger
from reconcilers.core.tree import Kind, Node, is_temporary
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

RETRY_BASE_NS = 1_000_000_000
RETRY_CAP_NS = 15 * 60 * 1_000_000_000
#: A build that crashes, hangs or runs out of memory is retried this many
#: times; then the file stays failed until its content changes.
BUILD_RETRIES = 3
NEVER_NS = 2**62
_SYNC_KEYS = ["blog_id", "path"]


def retry_delay_ns(attempts: int) -> int:
    """Exponential backoff for failed fetches: 1 s, 2 s, 4 s … capped at 15 min."""
    delay: int = RETRY_BASE_NS * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_CAP_NS)


@dataclass
class Applied:
    """What a batch changed, for the pass report."""

    set: int = 0
    move: int = 0
    drop: int = 0
    errors: int = 0
    needs_validation: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: Applied) -> None:
        self.set += other.set
        self.move += other.move
        self.drop += other.drop
        self.errors += other.errors
        self.needs_validation |= other.needs_validation
        self.failures.extend(other.failures)


def _walk(state: State | None, *triggers: Trigger, path: str) -> State:
    """Bring a row to ``pending`` (from wherever it is), then fire ``triggers``."""
    if state is None:
        current = State.PENDING
    elif state is State.PENDING:
        current = state
    elif state is State.IGNORED:
        current = MACHINE.advance(state, Trigger.UNIGNORE, path=path)
    elif state is State.FAILED:
        current = MACHINE.advance(state, Trigger.RETRY, path=path)
    else:
        current = MACHINE.advance(state, Trigger.REMOTE_CHANGED, path=path)
    for trigger in triggers:
        current = MACHINE.advance(current, trigger, path=path)
    return current


def _to_building(state: State | None, path: str) -> State:
    """A file whose right bytes are already installed goes straight to building."""
    if state is State.BUILDING:
        return state
    if state is State.FETCHING:
        return MACHINE.advance(state, Trigger.FETCHED, path=path)
    return _walk(state, Trigger.START_FETCH, Trigger.FETCHED, path=path)


def _row(blog_id: str, node: Node, state: State, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "blog_id": blog_id,
        "path": node.path,
        "kind": node.kind.value,
        "content_hash": node.content_hash,
        "rev": node.rev,
        "node_id": node.id,
        "size": node.size,
        "mtime_ns": node.mtime_ns,
        "state": state.value,
        "error": None,
        "attempts": 0,
        "retry_at_ns": 0,
        "failed_hash": None,
        "local_inode": None,
        "local_size": None,
        "local_mtime_ns": None,
    }
    row.update(extra)
    return row


def _stat_fields(stat: LocalStat) -> dict[str, int]:
    return {"local_inode": stat.inode, "local_size": stat.size, "local_mtime_ns": stat.mtime_ns}


@dataclass(frozen=True, slots=True)
class _Existing:
    state: State
    attempts: int
    content_hash: str | None
    stat: dict[str, Any]


class BatchRecorder:
    """Records one batch of outcomes for one blog inside one transaction."""

    def __init__(self, conn: Connection, blog_id: str, now: datetime, now_ns: int) -> None:
        self.conn = conn
        self.blog_id = blog_id
        self.now = now
        self.now_ns = now_ns
        self.applied = Applied()
        self.history: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.writes: list[entries.EntryWrite] = []

    def _existing(self, paths: Sequence[str]) -> dict[str, _Existing]:
        s = SYNCED.c
        found: dict[str, _Existing] = {}
        for part in chunks(list(paths)):
            for row in self.conn.execute(
                select(
                    s.path,
                    s.state,
                    s.attempts,
                    s.content_hash,
                    s.local_inode,
                    s.local_size,
                    s.local_mtime_ns,
                ).where(s.blog_id == self.blog_id, s.path.in_(part))
            ):
                found[row.path] = _Existing(
                    State(row.state),
                    row.attempts,
                    row.content_hash,
                    {
                        "local_inode": row.local_inode,
                        "local_size": row.local_size,
                        "local_mtime_ns": row.local_mtime_ns,
                    },
                )
        return found

    def _log(self, action: str, path: str, result: str = "ok") -> None:
        self.history.append(
            {
                "blog_id": self.blog_id,
                "at": self.now,
                "action": action,
                "path": path,
                "result": result,
            }
        )

    def record(self, outcomes: Sequence[Outcome]) -> Applied:
        keyed = [o for o in outcomes if isinstance(o, Installed | Rebuilt | FetchFailed | Recorded)]
        existing = self._existing([o.node.path for o in keyed])
        for outcome in outcomes:
            if isinstance(outcome, Installed | Rebuilt | FetchFailed | Recorded | MadeDir):
                self._stage(outcome, existing)
            else:
                self._flush()
                self._structural(outcome)
        self._flush()
        if self.history:
            self.conn.execute(HISTORY.insert(), self.history)
        return self.applied

    def _flush(self) -> None:
        upsert(self.conn, SYNCED, self.rows, _SYNC_KEYS)
        self.rows = []
        entries.set_entries(self.conn, self.blog_id, self.writes, self.now)
        self.writes = []

    def _entry(self, node: Node, result: BuildResult) -> tuple[Trigger, str | None]:
        if isinstance(result, BuildFailure):
            return Trigger.BUILD_FAILED, result.message
        if isinstance(result, BuildCrash):
            return Trigger.BUILD_CRASHED, result.message
        if isinstance(result, EntryDraft):
            self.writes.append(entries.EntryWrite(result, self.now))
        return Trigger.BUILT, None

    def _stage(
        self,
        outcome: Installed | Rebuilt | FetchFailed | Recorded | MadeDir,
        existing: dict[str, _Existing],
    ) -> None:
        node = outcome.node
        known = existing.get(node.path)
        old_state = known.state if known else None
        attempts = known.attempts if known else 0
        installed = known.content_hash if known else None
        kept_stat = known.stat if known else {}
        if isinstance(outcome, MadeDir):
            self.rows.append(_row(self.blog_id, node, State.SYNCED, content_hash=None))
            self._log("mkdir", node.path)
        elif isinstance(outcome, Installed | Rebuilt):
            trigger, error = self._entry(node, outcome.entry)
            state = MACHINE.advance(_to_building(old_state, node.path), trigger, path=node.path)
            extra: dict[str, Any] = {"error": error}
            if isinstance(outcome.entry, BuildCrash):
                extra.update(self._crash(node, attempts, outcome.entry.message))
                error = extra["error"]
            verdict = "failed" if trigger is Trigger.BUILD_CRASHED else "rejected"
            result = f"{verdict}: {error}" if error else "ok"
            if isinstance(outcome, Installed):
                extra.update(_stat_fields(outcome.stat))
                self.applied.set += 1
                self._log("set", node.path, result)
            else:
                self._log("build", node.path, result)
                extra.update(kept_stat)
            if error:
                self.applied.errors += 1
                self.applied.failures.append((node.path, error))
            self.rows.append(_row(self.blog_id, node, state, **extra))
        elif isinstance(outcome, FetchFailed):
            state = _walk(old_state, Trigger.START_FETCH, Trigger.FETCH_FAILED, path=node.path)
            attempts += 1
            keep = {"content_hash": installed, **kept_stat} if installed else {"content_hash": None}
            self.rows.append(
                _row(
                    self.blog_id,
                    node,
                    state,
                    error=outcome.message,
                    attempts=attempts,
                    retry_at_ns=self.now_ns + retry_delay_ns(attempts),
                    failed_hash=node.content_hash,
                    **keep,
                )
            )
            self.applied.errors += 1
            self.applied.failures.append((node.path, outcome.message))
            self._log("set", node.path, f"failed: {outcome.message}")
        elif outcome.ignored:
            state = MACHINE.advance(old_state or State.PENDING, Trigger.IGNORE, path=node.path)
            self.rows.append(_row(self.blog_id, node, state, content_hash=None))
            entries.soft_delete(self.conn, self.blog_id, node.path, self.now)
            self._log("ignore", node.path)
        else:
            state = _walk(old_state, Trigger.REFUSE, path=node.path)
            self.rows.append(
                _row(self.blog_id, node, state, content_hash=None, error=outcome.message)
            )
            self.applied.errors += 1
            self.applied.failures.append((node.path, outcome.message or "rejected"))
            self._log("reject", node.path, f"rejected: {outcome.message}")

    def _crash(self, node: Node, attempts: int, message: str) -> dict[str, Any]:
        """A failed build of installed bytes: rebuilt after a backoff, a few times."""
        attempts += 1
        if attempts > BUILD_RETRIES:
            return {
                "error": f"{message} (gave up after {attempts} attempts; change the file to retry)",
                "attempts": attempts,
                "retry_at_ns": NEVER_NS,
                "failed_hash": node.content_hash,
            }
        return {
            "error": message,
            "attempts": attempts,
            "retry_at_ns": self.now_ns + retry_delay_ns(attempts),
            "failed_hash": node.content_hash,
        }

    def _await_rebuild(self, root: str) -> None:
        """Moved posts (and moved rejected files) go to ``building`` with the move.

        The reconciler rebuilds them right after; a crash in between leaves
        them ``building``, which the next pass builds, instead of ``synced``
        with an entry that still says what the old path said.
        """
        s = SYNCED.c
        rows = self.conn.execute(
            select(s.path, s.state).where(
                s.blog_id == self.blog_id,
                in_subtree(s.path, root),
                s.kind == Kind.FILE.value,
                s.state.in_([State.SYNCED.value, State.REJECTED.value]),
            )
        ).all()
        marks = [
            {
                "b_blog": self.blog_id,
                "b_path": path,
                "b_state": MACHINE.advance(State(state), Trigger.REBUILD, path=path).value,
            }
            for path, state in rows
            # A rejected file that moved to a name that is no post is judged again too.
            if is_post(path) or state == State.REJECTED.value
        ]
        if marks:
            self.conn.execute(
                update(SYNCED)
                .where(s.blog_id == bindparam("b_blog"), s.path == bindparam("b_path"))
                .values(state=bindparam("b_state")),
                marks,
            )

    def _structural(self, outcome: Outcome) -> None:
        s = SYNCED.c
        if isinstance(outcome, Dropped):
            self.conn.execute(
                delete(SYNCED).where(s.blog_id == self.blog_id, in_subtree(s.path, outcome.path))
            )
            entries.soft_delete(self.conn, self.blog_id, outcome.path, self.now)
            if outcome.on_disk:
                self.applied.drop += 1
                self._log("drop", outcome.path)
        elif isinstance(outcome, Moved):
            self.conn.execute(
                delete(SYNCED).where(s.blog_id == self.blog_id, in_subtree(s.path, outcome.dst))
            )
            self.conn.execute(
                SYNCED.update()
                .where(s.blog_id == self.blog_id, in_subtree(s.path, outcome.src))
                .values(path=rebased(s.path, outcome.src, outcome.dst))
            )
            if (
                outcome.kind is Kind.FILE
                and not is_post(outcome.dst)
                and not is_temporary(outcome.dst)
            ):
                # A post renamed to a name that is not a post stops being one;
                # its entry stays at the old path as a tombstone, so content
                # arriving there again revives the same id.
                entries.soft_delete(self.conn, self.blog_id, outcome.src, self.now)
            else:
                entries.move(self.conn, self.blog_id, outcome.src, outcome.dst, self.now)
            if not is_temporary(outcome.dst):
                self._await_rebuild(outcome.dst)
            self.applied.move += 1
            self._log("move", outcome.src, f"ok: now {outcome.dst}")
        elif isinstance(outcome, ActionFailed):
            if outcome.verb == "move":
                self.conn.execute(
                    delete(SYNCED).where(
                        s.blog_id == self.blog_id, in_subtree(s.path, outcome.path)
                    )
                )
            self.applied.needs_validation = True
            self.applied.failures.append((outcome.path, outcome.message))
            self._log(outcome.verb, outcome.path, f"failed: {outcome.message}")


def record(
    conn: Connection, blog_id: str, outcomes: Sequence[Outcome], now: datetime, now_ns: int
) -> Applied:
    return BatchRecorder(conn, blog_id, now, now_ns).record(outcomes)


def trim_history(conn: Connection, blog_id: str, limit: int) -> None:
    h = HISTORY.c
    cutoff = conn.execute(
        select(h.id).where(h.blog_id == blog_id).order_by(h.id.desc()).offset(limit).limit(1)
    ).scalar()
    if cutoff is not None:
        conn.execute(delete(HISTORY).where(h.blog_id == blog_id, h.id <= cutoff))


__all__ = ["Applied", "record", "retry_delay_ns", "trim_history"]
