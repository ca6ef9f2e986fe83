"""Plain values the store hands out (never ORM rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BlogRecord:
    id: str
    source_kind: str
    source_config: dict[str, Any]
    folder: str
    cursor: str | None = None
    status: str = "new"
    status_message: str | None = None
    dirty: bool = False
    settled_until_ns: int | None = None
    created_at: datetime | None = None
    last_pass_at: datetime | None = None
    last_pass_seconds: float | None = None
    last_pass_result: str | None = None
    generation: int = 0
    pass_generation: int = 0
    failures: int = 0
    next_pass_at_ns: int | None = None
    last_full_at: datetime | None = None

    @property
    def source_spec(self) -> str:
        return f"{self.source_kind}:{self.source_config.get('location', '')}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source_spec,
            "folder": self.folder,
            "status": self.status,
            "status_message": self.status_message,
            "last_pass_at": _iso(self.last_pass_at),
            "last_pass_seconds": self.last_pass_seconds,
            "last_pass_result": self.last_pass_result,
            "generation": self.generation,
            "pass_generation": self.pass_generation,
            "failures": self.failures,
            "next_pass_at": _iso_ns(self.next_pass_at_ns),
            "last_full_at": _iso(self.last_full_at),
        }


@dataclass(frozen=True, slots=True)
class EntryRecord:
    id: str
    path: str
    title: str
    html: str
    date: datetime
    created: datetime
    updated: datetime
    tags: tuple[str, ...]
    draft: bool
    deleted: bool
    deleted_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "date": _iso(self.date),
            "created": _iso(self.created),
            "updated": _iso(self.updated),
            "tags": list(self.tags),
            "draft": self.draft,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    at: datetime
    action: str
    path: str
    result: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _iso_ns(value: int | None) -> str | None:
    if value is None or value >= 2**62:
        return None
    return datetime.fromtimestamp(value / 1e9, UTC).isoformat(timespec="seconds")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
