"""What executing an action achieved, reported back to the shell that records it.

The executor never writes the store (the domain layer cannot import it): it
returns these values and the controller persists a batch of them in one
transaction, so the synced tree only advances for actions that succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconcilers.build import EntryDraft
from reconcilers.core.tree import Kind, Node


@dataclass(frozen=True, slots=True)
class LocalStat:
    """What the installed file looks like on disk (for drift detection)."""

    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class BuildFailure:
    """The content cannot be built (bad metadata, not UTF-8): rejected until it changes."""

    message: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class BuildCrash:
    """The build, not the content, failed (crash, timeout, out of memory, a builder
    bug, the file changed under it): failed, and retried with backoff."""

    message: str


BuildResult = EntryDraft | BuildFailure | BuildCrash | None


@dataclass(frozen=True, slots=True)
class Dropped:
    path: str
    kind: Kind
    on_disk: bool


@dataclass(frozen=True, slots=True)
class Moved:
    src: str
    dst: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class MadeDir:
    node: Node


@dataclass(frozen=True, slots=True)
class Installed:
    """A file's bytes are in place; ``entry`` is its build (None: not a post)."""

    node: Node
    stat: LocalStat
    entry: BuildResult


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """An installed file's entry was built again from the local copy."""

    node: Node
    entry: BuildResult


@dataclass(frozen=True, slots=True)
class FetchFailed:
    node: Node
    message: str
    transient: bool = True


@dataclass(frozen=True, slots=True)
class Recorded:
    """A bookkeeping-only node: ignored, or rejected because of its path."""

    node: Node
    ignored: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ActionFailed:
    """A drop or move could not be applied (the folder drifted): repaired next pass."""

    verb: str
    path: str
    message: str
    dst: str | None = None


Outcome = Dropped | Moved | MadeDir | Installed | Rebuilt | FetchFailed | Recorded | ActionFailed
