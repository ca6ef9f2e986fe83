"""The values rename inference produces (shared by the inference and the scheduler)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconcilers.core.tree import Kind


class Reason(enum.Enum):
    """Why a move was inferred."""

    ID = "id"
    HASH = "hash"
    DIRECTORY = "directory"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class InferredMove:
    """``src`` becomes ``dst``; ``edited``: the content changed too (set it after)."""

    src: str
    dst: str
    kind: Kind
    reason: Reason
    edited: bool = False
