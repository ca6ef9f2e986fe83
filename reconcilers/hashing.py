"""Dropbox's content hash, the one hash every source and the executor agree on.

SHA-256 of each 4 MiB block, then SHA-256 of the concatenated block digests,
in hex. Using the Dropbox definition everywhere means a local file, a Dropbox
listing and an installed copy can be compared without re-reading anything.
"""

from __future__ import annotations

import hashlib

BLOCK_SIZE = 4 * 1024 * 1024


class ContentHasher:
    """Incremental content hash: feed bytes in any chunking, read ``hexdigest()``."""

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._block_pos = 0
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.size += len(view)
        while view:
            room = BLOCK_SIZE - self._block_pos
            chunk, view = view[:room], view[room:]
            self._block.update(chunk)
            self._block_pos += len(chunk)
            if self._block_pos == BLOCK_SIZE:
                self._overall.update(self._block.digest())
                self._block = hashlib.sha256()
                self._block_pos = 0

    def hexdigest(self) -> str:
        overall = self._overall.copy()
        if self._block_pos:
            overall.update(self._block.digest())
        return overall.hexdigest()


def content_hash(data: bytes) -> str:
    hasher = ContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


def hash_file(path: str) -> tuple[str, int]:
    """Content hash and size of a file on disk."""
    hasher = ContentHasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.hexdigest(), hasher.size
