"""The Dropbox webhook as an ASGI app: answer fast, leave the work to the loop.

A notification only says which accounts changed. Each account's blogs get
their trigger generation bumped (durable, and a Redis wake-up when
configured); the daemon's workers run the passes. ``controller serve`` mounts
this app at ``/webhooks/dropbox``; ``controller dropbox webhook`` serves it
alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

#: Accounts -> their blogs, read from the store on each notification.
BlogsByAccount = Callable[[], Mapping[str, list[str]]]


def signature(secret: str, body: bytes) -> str:
    """What Dropbox puts in ``X-Dropbox-Signature`` for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _accounts(body: bytes) -> list[str] | None:
    """The account ids of a notification body; None when it is not one."""
    try:
        payload = json.loads(body)
        accounts = payload["list_folder"]["accounts"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        return None
    return accounts


def webhook_app(
    *, app_secret: str, blogs_by_account: BlogsByAccount, fire: Callable[[str], int]
) -> Starlette:
    async def verify(request: Request) -> Response:
        challenge = request.query_params.get("challenge", "")
        return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})

    async def notify(request: Request) -> Response:
        body = await request.body()
        given = request.headers.get("X-Dropbox-Signature", "")
        if not hmac.compare_digest(given.encode(), signature(app_secret, body).encode()):
            log.warning("webhook with a bad signature refused", extra={"result": "forbidden"})
            return PlainTextResponse("bad signature\n", status_code=403)
        accounts = _accounts(body)
        if accounts is None:
            return PlainTextResponse(
                'expected JSON like {"list_folder": {"accounts": [...]}}\n', status_code=400
            )
        triggered = await run_in_threadpool(_trigger, accounts, blogs_by_account, fire)
        return JSONResponse({"triggered": triggered})

    return Starlette(
        routes=[Route("/", verify, methods=["GET"]), Route("/", notify, methods=["POST"])]
    )


def _trigger(
    accounts: list[str], blogs_by_account: BlogsByAccount, fire: Callable[[str], int]
) -> list[str]:
    by_account = blogs_by_account()
    triggered = []
    for account in accounts:
        for blog_id in by_account.get(account, ()):
            fire(blog_id)
            triggered.append(blog_id)
            log.info("webhook", extra={"blog": blog_id, "action": "trigger", "result": "ok"})
    return triggered
