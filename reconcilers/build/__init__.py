"""Building posts: from a file's bytes to an entry the blog can publish.

This is a shell around pure functions: callers fetch the bytes, this package
only interprets them, so a build can be repeated and tested without a disk.
"""

from .builders import is_post
from .entry import POST_SUFFIXES, EntryDraft, build_entry

__all__ = ["POST_SUFFIXES", "EntryDraft", "build_entry", "is_post"]
