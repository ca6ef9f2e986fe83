"""The seam every source implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol

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


class Source(Protocol):
    """A remote a blog follows.

    ``changes`` compares the source with the stored remote tree; ``fetch``
    writes one file's bytes into a binary stream (the executor verifies the
    content hash, so a source never has to).
    """

    kind: str

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Observation: ...

    def fetch(self, node: Node, into: BinaryIO) -> None: ...

    def describe(self) -> str: ...


def parse_source_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:location`` (``local:/srv/blog``) and refuse unknown kinds early."""
    kind, sep, location = spec.partition(":")
    if not sep or not location:
        raise SourceError(f"source {spec!r} must look like KIND:LOCATION, e.g. local:/path")
    if kind not in {"local"}:
        raise SourceError(f"unknown source kind {kind!r} (supported: local)")
    return kind, location
