"""Publication dates, from metadata or from the shape of a post's path.

Everything comes out timezone-aware in UTC: entries from different sources are
sorted against each other, and a naive datetime would compare by accident.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from reconcilers.errors import BuildError

from .metadata import Field

# ``YYYY/MM/DD`` with an optional time; ISO forms are left to ``fromisoformat``.
_SLASHED = re.compile(
    r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?"
)
_NAME_PREFIX = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})-")
_TWO_DIGITS = re.compile(r"[0-9]{2}")
_FOUR_DIGITS = re.compile(r"[0-9]{4}")


def date_from_field(field: Field, path: str) -> datetime | None:
    """Interpret a ``date`` field; an empty value means the post gave no date."""
    native = field.native
    try:
        if isinstance(native, datetime):
            return _to_utc(native)
        if isinstance(native, date):
            return datetime(native.year, native.month, native.day, tzinfo=UTC)
        text = field.value.strip()
        if not text:
            return None
        parsed = _parse_text(text)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise BuildError(
            f"Invalid date on line {field.line}: {field.value}", path=path, line=field.line
        )
    return parsed


def _parse_text(text: str) -> datetime | None:
    match = _SLASHED.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second = match.groups()
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=UTC,
        )
    if not _FOUR_DIGITS.match(text):
        # fromisoformat is lenient about odd forms but every ISO date starts with
        # a four-digit year; refusing anything else keeps "May 1st" an error.
        return None
    return _to_utc(datetime.fromisoformat(text))


def _to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def date_from_path(path: str) -> datetime | None:
    """Find a date in the path, preferring the one nearest the file.

    Nearest wins because a dated file inside a dated archive folder says more
    about the post than the folder does. Impossible dates (2024/13/40) are
    skipped rather than reported: the path may be dated by coincidence.
    """
    parts = path.split("/")
    for index in range(len(parts) - 1, -1, -1):
        match = _NAME_PREFIX.match(parts[index])
        if match is not None:
            found = _real_date(*match.groups())
            if found is not None:
                return found
        # A YYYY/MM/DD run ending in a folder: parts[index] is the DD folder.
        if 2 <= index < len(parts) - 1:
            year, month, day = parts[index - 2], parts[index - 1], parts[index]
            if (
                _FOUR_DIGITS.fullmatch(year)
                and _TWO_DIGITS.fullmatch(month)
                and _TWO_DIGITS.fullmatch(day)
            ):
                found = _real_date(year, month, day)
                if found is not None:
                    return found
    return None


def _real_date(year: str, month: str, day: str) -> datetime | None:
    try:
        return datetime(int(year), int(month), int(day), tzinfo=UTC)
    except ValueError:
        return None
