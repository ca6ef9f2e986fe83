"""Names no source mirrors, whatever the source."""

from __future__ import annotations

from reconcilers.core.tree import TEMP_PREFIX

#: OS and sync-client litter, Office lock files.
IGNORED_NAMES = frozenset(
    {
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".dropbox",
        ".dropbox.attr",
        ".dropbox.cache",
        "Icon\r",
    }
)


def is_ignored_name(name: str) -> bool:
    """Also the executor's temporaries, so a crash's leftovers are never mirrored."""
    return name in IGNORED_NAMES or name.startswith("~$") or name.startswith(TEMP_PREFIX)
