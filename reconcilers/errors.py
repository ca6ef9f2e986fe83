"""One exception hierarchy for the whole product.

The root lives here, in the domain layer, because ``reconcilers`` may not import
``controller``; the runtime layer adds its own subclasses (store, lease, CLI).
Every error carries the blog and, where it applies, the path, so a message can
always say *which* blog and *which* file.
"""

from __future__ import annotations


class ControllerError(Exception):
    """Root of every error the controller raises on purpose."""

    def __init__(self, message: str, *, blog_id: str | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.blog_id = blog_id
        self.path = path

    def __str__(self) -> str:
        where = []
        if self.blog_id is not None:
            where.append(f"blog {self.blog_id}")
        if self.path is not None:
            where.append(f"path {self.path!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class InvalidPath(ControllerError):
    """A path from a source that cannot be installed safely in a blog folder."""


class SourceError(ControllerError):
    """A source could not be observed or a file could not be fetched."""


class SourceGone(SourceError):
    """The source itself (its root folder) no longer exists: a blog-level error."""


class FetchError(SourceError):
    """One file could not be fetched (transient: retried with backoff)."""


class BuildError(ControllerError):
    """A file's content cannot become an entry (a content error: not retried)."""

    def __init__(
        self,
        message: str,
        *,
        blog_id: str | None = None,
        path: str | None = None,
        line: int | None = None,
    ):
        super().__init__(message, blog_id=blog_id, path=path)
        self.line = line


class ExecutorError(ControllerError):
    """An action could not be applied to the blog folder."""


class UnsafePlan(ControllerError):
    """A plan was refused by the safety guard (it would drop too much)."""


class ResilientError(ControllerError):
    """A call run in the supervised pool failed as a process, not as code.

    The message reads after "build" or any verb: "timed out after 30 s",
    "crashed (signal 11)", "ran out of memory".
    """


class Timeout(ResilientError):
    """The call ran past its timeout; its worker was killed."""


class Crashed(ResilientError):
    """The worker died during the call (a signal, ``os._exit``, a lost worker)."""


class OutOfMemory(ResilientError):
    """The call went over the worker's memory cap (``RLIMIT_AS``)."""
