"""Which source class serves a blog's ``source_kind``."""

from __future__ import annotations

from controller.settings import Settings
from controller.store import Store
from controller.store.records import BlogRecord
from reconcilers.errors import SourceError
from reconcilers.sources import LocalSource, Source


def open_source(blog: BlogRecord, store: Store, settings: Settings) -> Source:
    if blog.source_kind == "local":
        return LocalSource(blog.source_config["location"], blog_id=blog.id)
    if blog.source_kind == "dropbox":
        from controller.dropbox.connect import open_dropbox_source

        return open_dropbox_source(blog, store, settings)
    if blog.source_kind == "git":
        from controller.git.connect import open_git_source

        return open_git_source(blog)
    raise SourceError(f"unknown source kind {blog.source_kind!r}", blog_id=blog.id)
