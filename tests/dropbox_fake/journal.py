"""History of one account's changes, and the cursors that point into it.

``list_folder/continue`` reports, for each path that changed after the cursor,
its *current* state, ordered by the sequence number of its last change. Keeping
the history (rather than diffing trees) is what lets a deleted folder come out as
one DeletedMetadata, a move as a delete plus the new subtree, and a folder
followed by id keep working after it is renamed.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import asdict, dataclass


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Scope:
    """Which paths a listing covers, by their current ``path_lower``."""

    root: str
    recursive: bool

    def contains(self, path: str) -> bool:
        if path == self.root:
            # Dropbox lists a non-root folder itself first when listing recursively.
            return self.recursive and self.root != ""
        prefix = self.root + "/"
        if not path.startswith(prefix):
            return False
        return self.recursive or "/" not in path[len(prefix) :]


@dataclass(frozen=True)
class Change:
    seq: int
    path_display: str
    alive: bool  # False: report DeletedMetadata; True: report the current metadata


class Journal:
    def __init__(self) -> None:
        self.seq = 0
        self._events: list[tuple[int, str, bool]] = []  # (seq, path_display, deleted)
        self._moves: list[tuple[int, str, str]] = []  # (seq, old path_lower, new path_display)

    def record(self, path_display: str, *, deleted: bool) -> int:
        self.seq += 1
        self._events.append((self.seq, path_display, deleted))
        return self.seq

    def relocate(self, seq: int, old_lower: str, new_display: str) -> None:
        """Remembers a folder move so listings followed by id can map older paths forward."""
        self._moves.append((seq, old_lower, new_display))

    def _forward(self, display: str, seq: int) -> str:
        start = bisect_right(self._moves, seq, key=lambda m: m[0])
        for _, old, new in self._moves[start:]:
            lower = display.lower()
            if lower == old or lower.startswith(old + "/"):
                display = new + display[len(old) :]
        return display

    def changes(
        self,
        since: int,
        scope: Scope,
        *,
        follow_moves: bool,
        kind: Callable[[str], bool | None],
    ) -> list[Change]:
        """The entries ``continue`` owes a cursor at ``since``, in the order it owes them.

        ``kind(path_lower)`` is None when nothing is there now, else whether it is a folder.
        """
        start = bisect_right(self._events, since, key=lambda e: e[0])
        last: dict[str, _Seen] = {}
        for seq, display, deleted in self._events[start:]:
            if follow_moves:
                display = self._forward(display, seq)
            lower = display.lower()
            if not scope.contains(lower):
                continue
            seen = last.setdefault(lower, _Seen(seq, None, display))
            seen.seq, seen.display = seq, display
            if deleted:
                seen.deleted_at = seq
        out: list[Change] = []
        for lower, seen in last.items():
            now = kind(lower)
            if now is None:
                if not _covered(lower, seen.seq, last):
                    out.append(Change(seen.seq, seen.display, alive=False))
                continue
            if seen.deleted_at is not None and now:
                # A folder deleted and made again: its old children are gone too.
                out.append(Change(seen.deleted_at, seen.display, alive=False))
            out.append(Change(seen.seq, seen.display, alive=True))
        out.sort(key=lambda c: c.seq)
        return out


@dataclass(slots=True)
class _Seen:
    """A path's last change after the cursor, and its last delete if any."""

    seq: int
    deleted_at: int | None
    display: str


def _covered(lower: str, seq: int, last: dict[str, _Seen]) -> bool:
    """Whether a later delete of an ancestor already reports this path as gone."""
    path = _parent(lower)
    while path:
        seen = last.get(path)
        if seen is not None and seen.deleted_at is not None and seen.deleted_at >= seq:
            return True
        path = _parent(path)
    return False


@dataclass
class Cursor:
    """Everything ``continue`` needs, carried by the client as Dropbox cursors are.

    ``after`` is set while the first listing is still being paged: the path of the
    last entry sent, relative to the listed folder, so pages survive a rename of a
    folder followed by id. ``seq`` is then the journal position the listing shows.
    """

    epoch: str
    generation: int
    account_id: str
    root: str  # "" (account root), a path_lower, or "id:..."
    recursive: bool
    limit: int | None
    seq: int
    after: str | None = None

    def encode(self) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return "AA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        if not text.startswith("AA"):
            return None
        body = text[2:]
        try:
            fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return cls(**fields)
        except (ValueError, TypeError, binascii.Error):
            return None
