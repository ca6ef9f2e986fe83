"""The seam every source implements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reconcilers.core.tree import Node
from reconcilers.errors import SourceError


@dataclass(frozen=True, slots=True)
class Observation:
    """What changed at the source since ``known`` (the stored remote tree).

    ``upserts`` are nodes that are new or differ; ``deletes`` keys that are
    gone. Saving them and ``cursor`` in one transaction means a crash can
    neither skip nor wrongly replay a change.
    """

    upserts: tuple[Node, ...]
    deletes: tuple[str, ...]
    cursor: str | None

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes


class Sink(Protocol):
    """Where ``fetch`` writes a file's bytes.

    ``rewind`` forgets everything written so far: a source that retries a
    broken download starts the file again instead of appending to half of it.
    """

    def write(self, data: bytes) -> int: ...

    def rewind(self) -> None: ...


class Source(Protocol):
    """A remote a blog follows.

    ``changes`` compares the source with the stored remote tree and yields the
    difference in pages, each to be saved with its cursor in one transaction
    (a remote that pages its changes, like Dropbox, resumes from the last saved
    page after a crash). ``fetch`` writes one file's bytes into a sink (the
    executor verifies the content hash, so a source never has to).
    ``concurrency`` is how many fetches may run at once.
    """

    kind: str
    concurrency: int

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Iterable[Observation]: ...

    def fetch(self, node: Node, into: Sink) -> None: ...

    def describe(self) -> str: ...


@runtime_checkable
class Watchable(Protocol):
    """A source that can re-observe a few paths alone (a watched local folder).

    ``changes_at`` answers for ``paths`` and what lies under them, given the
    stored nodes at, under and above them; None when only a whole listing can
    answer.
    """

    def changes_at(self, paths: Iterable[str], known: Mapping[str, Node]) -> Observation | None: ...


def parse_source_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:location`` (``local:/srv/blog``) and refuse unknown kinds early."""
    kind, sep, location = spec.partition(":")
    if not sep or not location:
        raise SourceError(f"source {spec!r} must look like KIND:LOCATION, e.g. local:/path")
    if kind not in {"local", "dropbox", "git"}:
        raise SourceError(f"unknown source kind {kind!r} (supported: local, dropbox, git)")
    return kind, location
