"""Connecting a blog to a Dropbox folder, and opening its source for a pass.

At ``blog add`` time the token is checked (``users/get_current_account``) and
the folder resolved to its id; the blog stores the account id, folder id and
path, the account's row stores the tokens.
"""

from __future__ import annotations

import threading
from typing import Any

from dropbox import exceptions as dbx_errors
from dropbox import files as dbx_files

from controller.dropbox.client import ClientCache, make_client
from controller.errors import BlogExists, ConfigError
from controller.settings import Settings
from controller.store import Store
from controller.store.accounts import DropboxAccountRecord
from controller.store.records import BlogRecord
from reconcilers.errors import SourceError
from reconcilers.sources.dropbox import DropboxSource, auth_reason

_caches: dict[tuple[Any, ...], ClientCache] = {}
_caches_lock = threading.Lock()


def _cache(settings: Settings) -> ClientCache:
    key = (
        str(settings.dropbox_ca_certs),
        settings.dropbox_app_key,
        settings.dropbox_app_secret,
        settings.dropbox_concurrency,
    )
    with _caches_lock:
        return _caches.setdefault(key, ClientCache(settings))


def open_dropbox_source(blog: BlogRecord, store: Store, settings: Settings) -> DropboxSource:
    config = blog.source_config
    account = store.dropbox_accounts.get(config["account_id"])
    client = _cache(settings).get(
        account.account_id,
        refresh_token=account.refresh_token,
        access_token=account.access_token,
        app_key=account.app_key,
    )
    return DropboxSource(
        client,
        config["folder_id"],
        blog_id=blog.id,
        concurrency=settings.dropbox_concurrency,
        max_file_size=settings.dropbox_max_file_size,
    )


def connect_blog(
    settings: Settings,
    store: Store,
    *,
    blog_id: str,
    path: str,
    folder: str,
    refresh_token: str | None,
    access_token: str | None,
    app_key: str | None,
    app_secret: str | None,
    account_id: str | None = None,
) -> BlogRecord:
    """Check the token, resolve the folder, store account and blog; the new blog.

    Without a token, an account connected before (``controller dropbox
    authorize``) is used: the one named by ``account_id``, or the only one.
    """
    if not path.startswith("/") or path.rstrip("/") == "":
        raise ConfigError(
            f"the Dropbox path must be a folder below the root, like dropbox:/Apps/Blog"
            f" (got {path!r})",
            blog_id=blog_id,
        )
    if not refresh_token and not access_token:
        stored = _stored_account(store, blog_id, account_id)
        refresh_token, access_token = stored.refresh_token, stored.access_token
        app_key = app_key or stored.app_key
    if any(b.id == blog_id for b in store.list_blogs()):
        raise BlogExists("a blog with this id already exists", blog_id=blog_id)
    key = app_key or settings.dropbox_app_key
    client = make_client(
        settings,
        access_token=access_token,
        refresh_token=refresh_token,
        app_key=key,
        app_secret=app_secret,
    )
    account = _call(blog_id, "checking the token", client.users_get_current_account)
    try:
        metadata = _call(blog_id, "looking up the folder", client.files_get_metadata, path)
    except dbx_errors.ApiError as exc:
        raise ConfigError(
            f"there is no folder {path} in the Dropbox of {account.email} ({_lookup(exc)})",
            blog_id=blog_id,
        ) from None
    if not isinstance(metadata, dbx_files.FolderMetadata):
        raise ConfigError(
            f"{path} in the Dropbox of {account.email} is a file, not a folder",
            blog_id=blog_id,
        )
    store.dropbox_accounts.save(
        DropboxAccountRecord(
            account_id=account.account_id,
            email=account.email,
            display_name=account.name.display_name,
            app_key=key if refresh_token else None,
            refresh_token=refresh_token,
            access_token=None if refresh_token else access_token,
        )
    )
    return store.add_blog(
        BlogRecord(
            id=blog_id,
            source_kind="dropbox",
            source_config={
                "location": metadata.path_display,
                "account_id": account.account_id,
                "folder_id": metadata.id,
            },
            folder=folder,
        )
    )


def _stored_account(store: Store, blog_id: str, account_id: str | None) -> DropboxAccountRecord:
    accounts = store.dropbox_accounts.all()
    if account_id is not None:
        return store.dropbox_accounts.get(account_id)
    if len(accounts) == 1:
        return accounts[0]
    hint = (
        "run `controller dropbox authorize` first"
        if not accounts
        else "name one with --account (see `controller dropbox accounts`)"
    )
    raise ConfigError(
        f"no --refresh-token or --access-token given, and {hint}",
        blog_id=blog_id,
    )


def _call(blog_id: str, doing: str, method: Any, *args: Any) -> Any:
    """An SDK call whose failures become errors that name the blog, never the token."""
    try:
        return method(*args)
    except dbx_errors.AuthError as exc:
        raise ConfigError(
            f"Dropbox refused the token while {doing} ({auth_reason(exc)})",
            blog_id=blog_id,
        ) from None
    except dbx_errors.HttpError as exc:
        raise SourceError(
            f"Dropbox answered HTTP {exc.status_code} while {doing}",
            blog_id=blog_id,
        ) from None
    except OSError as exc:  # requests' connection errors are OSErrors
        raise SourceError(
            f"cannot reach Dropbox while {doing}: {type(exc).__name__}: {exc}",
            blog_id=blog_id,
        ) from None


def _lookup(exc: dbx_errors.ApiError) -> str:
    error = exc.error
    if isinstance(error, dbx_files.GetMetadataError) and error.is_path():
        lookup = error.get_path()
        if lookup.is_not_found():
            return "not found"
        if lookup.is_restricted():
            return "access restricted"
    return "lookup failed"
