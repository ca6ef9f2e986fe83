"""The routes: a parsed request in, the status, headers and body Dropbox would send out.

Kept apart from the socket code so every wire detail the SDK depends on (exact
``Content-Type``, error JSON, ``Dropbox-API-Result``) is in one readable place.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .accounts import Account, AuthFailure, GrantFailure
from .faults import DOWNLOAD, Fault
from .journal import Cursor, Scope
from .state import LookupFailure, Namespace, deleted_metadata, key_of

if TYPE_CHECKING:
    from .server import FakeDropbox

_FLIP = bytes(255 - i for i in range(256))
JSON = dict[str, object]


@dataclass
class Request:
    method: str
    route: str  # "files/list_folder", "oauth2/token", ...
    query: str
    headers: Message
    body: bytes


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncate: bool = False  # send the full Content-Length, half the body, then hang up


class BadInput(Exception):
    """A 400 with a plain-text body, as Dropbox answers malformed calls."""


class RouteError(Exception):
    """A 409 whose ``error`` the SDK decodes into the route's error union."""

    def __init__(self, error: dict[str, Any], summary: str) -> None:
        super().__init__(summary)
        self.error = error
        self.summary = summary


def _lookup(failure: LookupFailure) -> RouteError:
    return RouteError({".tag": "path", "path": {".tag": failure.tag}}, f"path/{failure.tag}/..")


def _reset() -> RouteError:
    return RouteError({".tag": "reset"}, "reset/..")


def json_reply(status: int, obj: object, **headers: str) -> Reply:
    body = json.dumps(obj, ensure_ascii=False).encode()
    return Reply(status, {"Content-Type": "application/json", **headers}, body)


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())


def fault_reply(fault: Fault) -> Reply:
    if fault.kind == "rate_limit":
        error = {"reason": {".tag": "too_many_requests"}, "retry_after": fault.retry_after}
        body = {"error_summary": "too_many_requests/..", "error": error}
        return json_reply(429, body, **{"Retry-After": str(fault.retry_after)})
    if fault.kind == "server_error":
        return text_reply(fault.status, "Internal Server Error")
    if fault.kind == "expired_token":
        return auth_reply(AuthFailure("expired_access_token"))
    assert fault.kind == "reset", fault
    return route_error_reply(_reset())


def route_error_reply(exc: RouteError) -> Reply:
    return json_reply(409, {"error_summary": exc.summary, "error": exc.error})


def auth_reply(failure: AuthFailure) -> Reply:
    body = {"error_summary": f"{failure.tag}/..", "error": {".tag": failure.tag}}
    return json_reply(401, body)


def handle(fake: FakeDropbox, req: Request) -> Reply:
    with fake._lock:
        fake.calls[req.route] += 1
        delay = fake.latency.get(req.route, 0.0)
    if delay:
        time.sleep(delay)
    entry = ROUTES.get(req.route)
    if entry is None:  # a 400 (BadInputError), so a route the fake lacks fails plainly
        return text_reply(400, f'Unknown API function: "{req.route}" (not served by the fake)')
    method, fn = entry
    if req.method != method:
        return text_reply(405, f"{req.route} takes {method}")
    if req.route != DOWNLOAD:  # downloads look for faults once they know the path
        with fake._lock:
            fault = fake._faults.take(req.route)
        if fault is not None:
            return fault_reply(fault)
    try:
        return fn(fake, req)
    except BadInput as exc:
        return text_reply(400, f'Error in call to API function "{req.route}": {exc}')
    except AuthFailure as exc:
        return auth_reply(exc)
    except LookupFailure as exc:
        return route_error_reply(_lookup(exc))
    except RouteError as exc:
        return route_error_reply(exc)


# -- request parsing -------------------------------------------------------------


def _json_arg(raw: str | bytes, where: str) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise BadInput(f"{where}: could not decode input as JSON") from None


def _rpc_arg(req: Request) -> Any:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadInput(f'Bad HTTP "Content-Type" header: "{ctype}". Expecting "application/json".')
    return _json_arg(req.body, "request body")


def _object(arg: Any, *required: str) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise BadInput("request body: expected an object")
    for name in required:
        if not isinstance(arg.get(name), str):
            raise BadInput(f"request body: missing or invalid required field '{name}'")
    return arg


def _account(fake: FakeDropbox, req: Request) -> Account:
    header = req.headers.get("Authorization")
    if header is None:
        raise BadInput('Must provide HTTP header "Authorization" or URL parameter "authorization".')
    with fake._lock:
        return fake._dir.bearer(header)


# -- users -----------------------------------------------------------------------------


def _get_current_account(fake: FakeDropbox, req: Request) -> Reply:
    if _rpc_arg(req) is not None:
        raise BadInput("request body: expected null, got value")
    return json_reply(200, _account(fake, req).full_account())


# -- metadata and listing --------------------------------------------------------------


def _get_metadata(fake: FakeDropbox, req: Request) -> Reply:
    arg = _object(_rpc_arg(req), "path")
    if arg["path"] == "":
        raise BadInput("request body: path: The root folder is unsupported.")
    acct = _account(fake, req)
    ns = acct.files
    with fake._lock:
        if arg["path"].startswith("rev:"):
            return json_reply(200, ns.file_metadata(ns.find_revision(arg["path"], None)))
        node = ns.resolve(arg["path"])
        if node is None:
            raise LookupFailure("not_found")
        return json_reply(200, node.metadata())


def _listing_arg(req: Request) -> tuple[str, bool, int | None]:
    arg = _object(_rpc_arg(req), "path")
    if arg["path"] == "/":
        raise BadInput(
            'request body: path: Specify the root folder as an empty string rather than as "/".'
        )
    limit = arg.get("limit")
    if limit is not None and (type(limit) is not int or not 1 <= limit <= 2000):
        raise BadInput("request body: limit: must be between 1 and 2000")
    return arg["path"], bool(arg.get("recursive", False)), limit


def _root_lower(ns: Namespace, root: str) -> str:
    """The listed folder's current path_lower; a folder followed by id may have moved."""
    if root == "":
        return ""
    node = ns.resolve(root)
    if node is None:
        if root.startswith("id:"):
            raise LookupFailure("not_found")
        return root  # a folder listed by path: continue reports what happened there
    if not node.is_folder:
        raise LookupFailure("not_folder")
    return node.path_display.lower()


def _new_cursor(
    fake: FakeDropbox, acct: Account, path: str, recursive: bool, limit: int | None
) -> Cursor:
    ns = acct.files
    if path != "" and ns.resolve(path) is None:
        raise LookupFailure("not_found")
    root = path if path.startswith("id:") or path == "" else path.lower()
    _root_lower(ns, root)
    gen = acct.cursor_generation
    return Cursor(fake._epoch, gen, acct.account_id, root, recursive, limit, ns.journal.seq)


def _page(fake: FakeDropbox, ns: Namespace, cur: Cursor) -> tuple[list[JSON], Cursor, bool]:
    """One page of a listing (``cur.after`` set) or of the changes since ``cur.seq``."""
    limit = min(cur.limit or fake.page_size, fake.page_size)
    root = _root_lower(ns, cur.root)
    scope = Scope(root, cur.recursive)
    if cur.after is not None:
        base = key_of(root)
        after = None if cur.after == "\0" else base + key_of("/" + cur.after) if cur.after else base
        entries: list[JSON] = []
        last = cur.after
        for node in ns.walk(root, after):
            lower = node.path_display.lower()
            if node.seq > cur.seq or not scope.contains(lower):
                continue  # made after the listing began: the changes after it report it
            if len(entries) == limit:
                return entries, replace(cur, after=last), True
            entries.append(node.metadata())
            last = lower[len(root) + 1 :]
        return entries, replace(cur, after=None), False
    changes = ns.journal.changes(
        cur.seq,
        scope,
        follow_moves=cur.root.startswith("id:"),
        kind=lambda p: None if (n := ns.nodes.get(p)) is None else n.is_folder,
    )
    page = changes[:limit]
    entries = [
        ns.nodes[c.path_display.lower()].metadata() if c.alive else deleted_metadata(c.path_display)
        for c in page
    ]
    more = len(changes) > limit
    return entries, replace(cur, seq=page[-1].seq if more else ns.journal.seq), more


def _listing(fake: FakeDropbox, acct: Account, cur: Cursor) -> Reply:
    entries, cur, more = _page(fake, acct.files, cur)
    return json_reply(200, {"entries": entries, "cursor": cur.encode(), "has_more": more})


def _list_folder(fake: FakeDropbox, req: Request) -> Reply:
    path, recursive, limit = _listing_arg(req)
    acct = _account(fake, req)
    with fake._lock:
        cur = _new_cursor(fake, acct, path, recursive, limit)
        return _listing(fake, acct, replace(cur, after="\0"))


def _get_latest_cursor(fake: FakeDropbox, req: Request) -> Reply:
    path, recursive, limit = _listing_arg(req)
    acct = _account(fake, req)
    with fake._lock:
        return json_reply(200, {"cursor": _new_cursor(fake, acct, path, recursive, limit).encode()})


def _valid_cursor(fake: FakeDropbox, text: Any, account_id: str | None) -> tuple[Account, Cursor]:
    cur = Cursor.decode(text) if isinstance(text, str) else None
    acct = fake._dir.accounts.get(cur.account_id) if cur else None
    if (
        cur is None
        or acct is None
        or cur.epoch != fake._epoch
        or cur.generation < acct.cursor_generation
        or account_id not in (None, acct.account_id)
    ):
        raise _reset()
    return acct, cur


def _continue(fake: FakeDropbox, req: Request) -> Reply:
    arg = _object(_rpc_arg(req), "cursor")
    me = _account(fake, req)
    with fake._lock:
        acct, cur = _valid_cursor(fake, arg["cursor"], me.account_id)
        return _listing(fake, acct, cur)


def _longpoll(fake: FakeDropbox, req: Request) -> Reply:
    if req.headers.get("Authorization") is not None:  # the SDK sends none: the route is noauth
        raise BadInput(
            "Your request includes an Authorization header, but this function does not use it."
        )
    arg = _object(_rpc_arg(req), "cursor")
    timeout = arg.get("timeout", 30)
    if type(timeout) is not int or not 30 <= timeout <= 480:
        raise BadInput("request body: timeout: must be between 30 and 480")
    deadline = time.monotonic() + timeout * fake.longpoll_time_scale
    with fake._changed:
        while True:
            acct, cur = _valid_cursor(fake, arg["cursor"], None)
            if fake._stopping:
                changes = False
                break
            if cur.after is not None:
                changes = True  # the first listing has pages left
                break
            if acct.files.journal.seq > cur.seq:
                try:
                    changes = bool(_page(fake, acct.files, cur)[0])
                except LookupFailure:
                    changes = True  # continue will report the error
                if changes:
                    break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                changes = False
                break
            fake._changed.wait(remaining)
        result: dict[str, object] = {"changes": changes}
        if fake.longpoll_backoff is not None:
            result["backoff"] = fake.longpoll_backoff
    return json_reply(200, result)


# -- download -----------------------------------------------------------------------------


def _download(fake: FakeDropbox, req: Request) -> Reply:
    raw = req.headers.get("Dropbox-API-Arg")
    if raw is None:
        raise BadInput('Missing "Dropbox-API-Arg" header')
    arg = _object(_json_arg(raw, "Dropbox-API-Arg header"), "path")
    acct = _account(fake, req)
    with fake._lock:
        rev = acct.files.find_revision(arg["path"], arg.get("rev"))
        meta = acct.files.file_metadata(rev)
        lower = str(meta["path_lower"])
        fault = fake._faults.take(DOWNLOAD, lower)
        if fault is not None and fault.kind not in ("truncate", "corrupt"):
            return fault_reply(fault)
        fake.downloads.append((acct.account_id, lower, rev.rev))
        hooks = fake._hooks.get(lower)
        hook: Callable[[], object] | None = hooks.pop(0) if hooks else None
        body = rev.content
    if hook is not None:
        hook()  # outside the lock: the hook may change the file being downloaded
    if fault is not None and fault.kind == "corrupt":
        body = body.translate(_FLIP)
    headers = {
        "Content-Type": "application/octet-stream",
        "Dropbox-API-Result": json.dumps(meta),  # ASCII only: non-ASCII names are \u-escaped
    }
    return Reply(200, headers, body, truncate=fault is not None and fault.kind == "truncate")


# -- OAuth2 ------------------------------------------------------------------------------


def _token(fake: FakeDropbox, req: Request) -> Reply:
    form = {k: v[-1] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
    basic = None
    scheme, _, cred = (req.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            key, _, secret = base64.b64decode(cred, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return json_reply(400, {"error": "invalid_client", "error_description": "bad Basic"})
        basic = (key, secret)
    try:
        with fake._lock:
            return json_reply(200, fake._dir.token(form, basic))
    except GrantFailure as exc:
        return json_reply(400, {"error": exc.error, "error_description": exc.description})


def _authorize(fake: FakeDropbox, req: Request) -> Reply:
    account_id = fake.authorize_as
    if account_id is None:
        return text_reply(400, "fake Dropbox: set fake.authorize_as to the account that approves")
    try:
        with fake._lock:
            code = fake._dir.approve("?" + req.query, account_id)
    except (ValueError, KeyError) as exc:
        return text_reply(400, str(exc))
    return text_reply(200, code)


ROUTES: dict[str, tuple[str, Callable[[FakeDropbox, Request], Reply]]] = {
    "users/get_current_account": ("POST", _get_current_account),
    "files/get_metadata": ("POST", _get_metadata),
    "files/list_folder": ("POST", _list_folder),
    "files/list_folder/continue": ("POST", _continue),
    "files/list_folder/get_latest_cursor": ("POST", _get_latest_cursor),
    "files/list_folder/longpoll": ("POST", _longpoll),
    "files/download": ("POST", _download),
    "oauth2/token": ("POST", _token),
    "oauth2/authorize": ("GET", _authorize),
}
