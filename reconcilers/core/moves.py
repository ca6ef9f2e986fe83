"""The values rename inference produces (shared by the inference and the scheduler)."""

from __future__ import annotations

import enum
from typing import NamedTuple

from reconcilers.core.tree import Kind


class Reason(enum.Enum):
    """Why a move was inferred."""

    ID = "id"
    HASH = "hash"
    DIRECTORY = "directory"
    METADATA = "metadata"


class InferredMove(NamedTuple):
    """``src`` becomes ``dst``; ``edited``: the content changed too (set it after).

    A named tuple rather than a frozen dataclass: a batch makes one per moved
    file, and a tuple is built five times faster.
    """

    src: str
    dst: str
    kind: Kind
    reason: Reason
    edited: bool = False
