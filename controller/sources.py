"""Which source class serves a blog's ``source_kind``."""

from __future__ import annotations

from controller.store.records import BlogRecord
from reconcilers.errors import SourceError
from reconcilers.sources import LocalSource, Source


def open_source(blog: BlogRecord) -> Source:
    if blog.source_kind == "local":
        return LocalSource(blog.source_config["location"], blog_id=blog.id)
    raise SourceError(f"unknown source kind {blog.source_kind!r}", blog_id=blog.id)
