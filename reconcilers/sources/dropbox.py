"""A Dropbox folder as a source (``dropbox:/path``), through the official SDK.

The folder is followed by its id, so renaming or moving it inside Dropbox
changes nothing for the blog. Observing is ``list_folder`` once, then
``list_folder/continue`` from the stored cursor, page by page (see
:mod:`reconcilers.sources.dropbox_listing`); a ``reset`` lists everything
again and compares it with the stored tree, so unchanged files are neither
downloaded nor rewritten.

The SDK's own retry loops sleep inside the call (forever, for 429s); the
client must be built with ``max_retries_on_rate_limit=0`` and
``max_retries_on_error=0`` and this module retries instead: a 429 holds every
request of the blog until ``Retry-After`` has passed, a 5xx or a network error
retries that request (or that file's download, from its first byte) with
backoff.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from typing import Any, TypeVar

import requests
from dropbox import exceptions as dbx_errors
from dropbox import files as dbx_files

from reconcilers.core.tree import Node
from reconcilers.errors import FetchError, SourceError, SourceGone
from reconcilers.sources.base import Observation, Sink
from reconcilers.sources.dropbox_listing import Entry, Overlay

log = logging.getLogger(__name__)

T = TypeVar("T")
CHUNK = 256 * 1024
DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
#: Network errors and 5xx answers: tries per request (and per download).
ATTEMPTS = 4
#: 429 answers: how many a single request may meet before the pass gives up.
RATE_LIMIT_ATTEMPTS = 8
_TRANSIENT = (dbx_errors.InternalServerError, requests.RequestException)


class _Truncated(Exception):
    """The body ended before the size the metadata promised."""


class RateGate:
    """Blog-wide 429 handling: every request waits until the latest Retry-After."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while (delay := self._until - time.monotonic()) > 0:
            self._sleep(delay)


def entry_of(metadata: Any, prefix: str) -> Entry | None:
    """An SDK metadata object as an :class:`Entry` relative to ``prefix``.

    ``prefix`` is the blog folder's current ``path_lower``; None when the entry
    lies outside it.
    """
    lower: str = metadata.path_lower or ""
    display: str = metadata.path_display or lower
    if lower == prefix:
        relative_lower, relative_display = "", ""
    elif lower.startswith(prefix + "/"):
        relative_lower = lower[len(prefix) + 1 :]
        relative_display = display[len(prefix) + 1 :]
        if relative_display.lower() != relative_lower:
            relative_display = relative_lower
    else:
        return None
    if isinstance(metadata, dbx_files.FileMetadata):
        modified = metadata.client_modified.replace(tzinfo=UTC)
        return Entry(
            "file",
            relative_lower,
            relative_display,
            id=metadata.id,
            rev=metadata.rev,
            size=metadata.size,
            content_hash=metadata.content_hash,
            client_modified_ns=int(modified.timestamp()) * 1_000_000_000,
            downloadable=metadata.is_downloadable is not False,
        )
    if isinstance(metadata, dbx_files.FolderMetadata):
        return Entry("folder", relative_lower, relative_display, id=metadata.id)
    return Entry("deleted", relative_lower, relative_display)


class DropboxSource:
    kind = "dropbox"

    def __init__(
        self,
        client: Any,
        folder_id: str,
        *,
        blog_id: str | None = None,
        concurrency: int = 8,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        page_limit: int = 2000,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.folder_id = folder_id
        self.blog_id = blog_id
        self.concurrency = concurrency
        self.max_file_size = max_file_size
        self.page_limit = page_limit
        self.backoff = backoff
        self._sleep = sleep
        self.gate = RateGate(sleep)
        #: The blog folder's current ``path_lower`` (resolved from its id).
        self.prefix: str | None = None

    def describe(self) -> str:
        return f"dropbox:{self.prefix or '?'} ({self.folder_id})"

    # -- observing -------------------------------------------------------------

    def changes(self, cursor: str | None, known: Mapping[str, Node]) -> Iterator[Observation]:
        """Pages of changes; the folder's path is looked up only when entries need it.

        So a pass with nothing new costs one ``list_folder/continue`` round trip.
        """
        self.prefix = None
        overlay = Overlay(known, max_file_size=self.max_file_size)
        if cursor is None:
            yield from self._list_all(overlay, None)
            return
        result = self._continue(cursor)
        while result is not None:
            self._apply(overlay, result.entries)
            yield overlay.page(result.cursor)
            if not result.has_more:
                return
            result = self._continue(result.cursor)
        log.warning(
            "the Dropbox cursor was reset; listing the folder again",
            extra={"blog": self.blog_id, "action": "list", "result": "reset"},
        )
        yield from self._list_all(overlay, cursor)

    def resolve(self) -> str:
        """The blog folder's current ``path_lower``, found by its id."""
        try:
            metadata = self._call(self.client.files_get_metadata, self.folder_id)
        except dbx_errors.ApiError as exc:
            if _not_found(exc):
                raise self._gone() from None
            raise self._api_error("looking up the blog folder", exc) from None
        if not isinstance(metadata, dbx_files.FolderMetadata):
            raise SourceGone(
                f"the Dropbox folder of blog {self.blog_id} is no longer a folder",
                blog_id=self.blog_id,
            )
        lower: str = metadata.path_lower
        return lower

    def _list_all(self, overlay: Overlay, old_cursor: str | None) -> Iterator[Observation]:
        """A full listing; pages keep ``old_cursor`` until the last one."""
        overlay.start_full_listing()
        try:
            result = self._call(
                self.client.files_list_folder,
                self.folder_id,
                recursive=True,
                include_deleted=True,
                limit=self.page_limit,
            )
            while result.has_more:
                self._apply(overlay, result.entries)
                yield overlay.page(old_cursor)
                result = self._call(self.client.files_list_folder_continue, result.cursor)
        except dbx_errors.ApiError as exc:
            if _not_found(exc):
                raise self._gone() from None
            raise self._api_error("listing the blog folder", exc) from None
        self._apply(overlay, result.entries)
        yield overlay.finish(result.cursor)

    def _continue(self, cursor: str) -> Any:
        """One page after ``cursor``; None when Dropbox says the cursor was reset."""
        try:
            return self._call(self.client.files_list_folder_continue, cursor)
        except dbx_errors.ApiError as exc:
            error = exc.error
            if isinstance(error, dbx_files.ListFolderContinueError) and error.is_reset():
                return None
            if _not_found(exc):
                raise self._gone() from None
            raise self._api_error("listing changes", exc) from None

    def _apply(self, overlay: Overlay, metadata: list[Any]) -> None:
        entries = []
        for item in metadata:
            entry = self._entry(item)
            if entry is None:
                continue
            if entry.path_lower == "":
                if entry.tag == "deleted":
                    raise self._gone()
                continue
            entries.append(entry)
        overlay.apply(entries)

    def _current_prefix(self) -> str:
        if self.prefix is None:
            self.prefix = self.resolve()
        return self.prefix

    def _entry(self, metadata: Any) -> Entry | None:
        entry = entry_of(metadata, self._current_prefix())
        if entry is None:
            # The blog folder may have moved since this pass resolved it.
            self.prefix = self.resolve()
            entry = entry_of(metadata, self.prefix)
            if entry is None:
                log.warning(
                    "entry outside the blog folder skipped",
                    extra={"blog": self.blog_id, "path": metadata.path_lower, "action": "list"},
                )
        return entry

    # -- fetching --------------------------------------------------------------

    def fetch(self, node: Node, into: Sink) -> None:
        """Stream one file; a broken or short body starts the file again."""
        where = node.id or f"{self._current_prefix()}/{node.path}"
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                into.rewind()
            try:
                metadata, response = self._call(self.client.files_download, where)
                try:
                    got = 0
                    for chunk in response.iter_content(CHUNK):
                        into.write(chunk)
                        got += len(chunk)
                finally:
                    response.close()
                if got != metadata.size:
                    raise _Truncated(f"got {got} of {metadata.size} bytes")
                return
            except dbx_errors.ApiError as exc:
                if _not_found(exc):
                    raise FetchError(
                        "the file is no longer in Dropbox", blog_id=self.blog_id, path=node.path
                    ) from None
                raise FetchError(
                    f"Dropbox refused the download: {exc.error}",
                    blog_id=self.blog_id,
                    path=node.path,
                ) from None
            except (requests.RequestException, _Truncated) as exc:
                if attempt == ATTEMPTS:
                    raise FetchError(
                        f"download failed {ATTEMPTS} times, last: {_describe(exc)}",
                        blog_id=self.blog_id,
                        path=node.path,
                    ) from None
                log.info(
                    "download broke; retrying",
                    extra={"blog": self.blog_id, "path": node.path, "result": _describe(exc)},
                )
                self._pause(attempt)
        raise AssertionError("unreachable")

    # -- calling the SDK ---------------------------------------------------------

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One SDK call, retried on 429 (blog-wide), 5xx and network errors."""
        failures = limited = 0
        while True:
            self.gate.wait()
            try:
                return method(*args, **kwargs)
            except dbx_errors.RateLimitError as exc:
                limited += 1
                if limited >= RATE_LIMIT_ATTEMPTS:
                    raise SourceError(
                        f"Dropbox answered 429 (rate limit) {limited} times in a row",
                        blog_id=self.blog_id,
                    ) from None
                self.gate.hold(exc.backoff if exc.backoff is not None else 5.0)
            except requests.exceptions.SSLError as exc:
                raise SourceError(
                    f"cannot verify Dropbox's TLS certificate ({exc}); behind a"
                    " TLS-intercepting proxy, set CONTROLLER_DROPBOX_CA_CERTS to its CA bundle",
                    blog_id=self.blog_id,
                ) from None
            except _TRANSIENT as exc:
                failures += 1
                if failures >= ATTEMPTS:
                    raise SourceError(
                        f"Dropbox is unreachable: {_describe(exc)}",
                        blog_id=self.blog_id,
                    ) from None
                self._pause(failures)
            except dbx_errors.AuthError as exc:
                raise SourceError(
                    f"Dropbox refused the credentials ({auth_reason(exc)}); connect the blog"
                    " again with `controller dropbox authorize` or `blog add --refresh-token`",
                    blog_id=self.blog_id,
                ) from None
            except dbx_errors.BadInputError as exc:
                raise SourceError(
                    f"Dropbox refused a request as malformed: {exc.message}",
                    blog_id=self.blog_id,
                ) from None

    def _pause(self, attempt: int) -> None:
        self._sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2))

    def _gone(self) -> SourceGone:
        return SourceGone(
            f"the Dropbox folder of blog {self.blog_id} no longer exists", blog_id=self.blog_id
        )

    def _api_error(self, doing: str, exc: dbx_errors.ApiError) -> SourceError:
        return SourceError(f"Dropbox refused {doing}: {exc.error}", blog_id=self.blog_id)


def _not_found(exc: dbx_errors.ApiError) -> bool:
    """A route error whose lookup failed: the path (or id) does not exist."""
    error = exc.error
    is_path = getattr(error, "is_path", None)
    if is_path is None or not is_path():
        return False
    lookup = error.get_path()
    return bool(lookup.is_not_found() or lookup.is_not_folder())


def auth_reason(exc: dbx_errors.AuthError) -> str:
    """Why Dropbox refused a token, in words (never the token)."""
    error = exc.error
    if error is not None and error.is_expired_access_token():
        return "the access token expired and cannot be refreshed"
    if error is not None and error.is_invalid_access_token():
        return "the token is invalid or was revoked"
    return "not authorised"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, dbx_errors.InternalServerError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
