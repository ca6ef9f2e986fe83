"""The web app of ``controller serve`` (and ``controller run --http``).

Probes and metrics are open (Prometheus and Kubernetes call them); the
dashboard needs the token when one is configured. Pages read the store
only; the two buttons write no row themselves: "Reconcile now" bumps the
trigger generation and "Retry" records a request the next pass carries out
under its lease. File paths in URLs are only ever keys looked up in the
store: no URL reads the disk, so none can reach outside a blog folder.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from controller.errors import StoreError, UnknownBlog
from controller.metrics import METRICS, Metrics
from controller.settings import Settings
from controller.store import Store
from controller.triggers import Triggers
from controller.web.auth import COOKIE, Guard
from controller.web.tree import build_tree
from reconcilers.core.tree import normalise_path
from reconcilers.errors import InvalidPath

log = logging.getLogger(__name__)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
#: Above this many files the viewer lists the problems only.
TREE_LIMIT = 5000
WORDS = {
    "synced": "installed and built",
    "pending": "waiting to be fetched",
    "fetching": "being fetched",
    "building": "installed, waiting to be built",
    "failed": "the last attempt failed; it is retried with backoff",
    "rejected": "cannot be built until its content changes",
    "ignored": "not mirrored (system or temporary file)",
}
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self';"
        " frame-src 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
}
#: A post's HTML runs no script and reaches nothing; the iframe adds its own sandbox.
PREVIEW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline';"
        " frame-ancestors 'self'"
    ),
}


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _key(raw: str) -> str | None:
    try:
        return normalise_path(raw)
    except InvalidPath:
        return None


class Web:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        triggers: Triggers | None = None,
        metrics: Metrics = METRICS,
        redis_ping: Any = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.triggers = triggers or Triggers(store, settings)
        self.metrics = metrics
        self.guard = Guard(settings.dashboard_token)
        self.redis_ping = redis_ping

    # -- probes and metrics ------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.store.views.ping)
            if self.redis_ping is not None:
                await run_in_threadpool(self.redis_ping)
        except Exception as exc:  # any failure means "not ready", with the reason
            return PlainTextResponse(f"not ready: {exc}\n", status_code=503)
        return PlainTextResponse("ready\n")

    async def metrics_page(self, request: Request) -> Response:
        counts = await run_in_threadpool(self.store.views.state_counts)
        total: Counter[str] = Counter()
        for per_blog in counts.values():
            total.update(per_blog)
        self.metrics.set_file_states(total)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    # -- auth ------------------------------------------------------------------------

    def _denied(self, request: Request) -> Response | None:
        if self.guard.allowed(request):
            return None
        if request.method == "GET" and "text/html" in request.headers.get("accept", "text/html"):
            return _page("login.html", status=401)
        return PlainTextResponse("unauthorised: log in or send the dashboard token\n", 401)

    async def login_form(self, request: Request) -> Response:
        return _page("login.html")

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        if not self.guard.token_matches(form.get("token", "")):
            return _page("login.html", status=401, wrong=True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            self.guard.session_value(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def _checked_post(self, request: Request) -> Response | None:
        denied = self._denied(request)
        if denied is not None:
            return denied
        form = await _form(request)
        if not self.guard.csrf_ok(request, form.get("csrf", "")):
            return PlainTextResponse("refused: missing or wrong CSRF token\n", status_code=403)
        return None

    # -- pages -----------------------------------------------------------------------

    async def blogs(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        blogs = await run_in_threadpool(self.store.list_blogs)
        counts = await run_in_threadpool(self.store.views.state_counts)
        return _page("blogs.html", blogs=blogs, counts={k: dict(v) for k, v in counts.items()})

    async def blog(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        blog_id = request.path_params["blog"]
        try:
            blog = await run_in_threadpool(self.store.get_blog, blog_id)
        except UnknownBlog:
            return PlainTextResponse("no such blog\n", status_code=404)
        files = await run_in_threadpool(self.store.views.files, blog_id)
        history = await run_in_threadpool(self.store.history, blog_id, 50)
        listed = [f for f in files if f.kind == "file"]
        return _page(
            "blog.html",
            blog=blog,
            csrf=self.guard.csrf_token(request),
            problems=[f for f in listed if f.state in ("failed", "rejected")],
            tree=build_tree(files),
            truncated=len(listed) > TREE_LIMIT,
            total=len(listed),
            limit=TREE_LIMIT,
            history=history,
            flash=_flash(request),
        )

    async def file(self, request: Request) -> Response:
        found = await self._file_and_entry(request)
        if isinstance(found, Response):
            return found
        blog, file, entry = found
        return _page(
            "file.html",
            blog=blog,
            file=file,
            entry=entry,
            words=WORDS.get(file.state, ""),
            csrf=self.guard.csrf_token(request),
            flash=_flash(request),
        )

    async def preview(self, request: Request) -> Response:
        found = await self._file_and_entry(request)
        if isinstance(found, Response):
            return found
        _, _, entry = found
        if entry is None:
            return PlainTextResponse("no entry for this file\n", status_code=404)
        body = f'<!doctype html><meta charset="utf-8"><body>{entry.html}</body>'
        return HTMLResponse(body, headers=PREVIEW_HEADERS)

    async def _file_and_entry(self, request: Request) -> Any:
        """(blog, file, entry or None) of a file page, or the response that refuses it."""
        if (denied := self._denied(request)) is not None:
            return denied
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        blog, file = found
        entry = await run_in_threadpool(self.store.views.entry, blog.id, file.path)
        return blog, file, entry

    async def _find(self, request: Request) -> Any:
        blog_id, key = request.path_params["blog"], _key(request.path_params["path"])
        try:
            blog = await run_in_threadpool(self.store.get_blog, blog_id)
        except UnknownBlog:
            return PlainTextResponse("no such blog\n", status_code=404)
        file = None if key is None else await run_in_threadpool(self.store.views.file, blog_id, key)
        if file is None:
            return PlainTextResponse("no such file in this blog\n", status_code=404)
        return blog, file

    # -- actions ---------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Response:
        if (refused := await self._checked_post(request)) is not None:
            return refused
        blog_id = request.path_params["blog"]
        try:
            generation = await run_in_threadpool(self.triggers.fire, blog_id)
        except UnknownBlog:
            return PlainTextResponse("no such blog\n", status_code=404)
        log.info("dashboard", extra={"blog": blog_id, "action": "trigger", "result": "ok"})
        return _back(f"/blogs/{quote(blog_id)}", f"Reconcile requested (generation {generation}).")

    async def retry(self, request: Request) -> Response:
        if (refused := await self._checked_post(request)) is not None:
            return refused
        found = await self._find(request)
        if isinstance(found, Response):
            return found
        blog, file = found
        await run_in_threadpool(self.store.views.request_retry, blog.id, file.path)
        await run_in_threadpool(self.triggers.fire, blog.id)
        log.info("dashboard", extra={"blog": blog.id, "path": file.path, "action": "retry"})
        where = f"/blogs/{quote(blog.id)}/files/{quote(file.path)}"
        return _back(where, "Retry requested: the next pass tries this file again.")


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the dashboard sends)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _back(path: str, message: str) -> Response:
    return RedirectResponse(f"{path}?done={quote(message)}", status_code=303)


def _flash(request: Request) -> str | None:
    return request.query_params.get("done")


def build_app(
    store: Store,
    settings: Settings,
    *,
    triggers: Triggers | None = None,
    metrics: Metrics = METRICS,
) -> Starlette:
    redis_ping = None
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )

        def redis_ping() -> None:
            try:
                client.ping()
            except redis.RedisError as exc:
                raise StoreError(f"Redis does not answer: {type(exc).__name__}") from None

    web = Web(store, settings, triggers=triggers, metrics=metrics, redis_ping=redis_ping)
    routes: list[Route | Mount] = [
        Route("/healthz", web.healthz),
        Route("/readyz", web.readyz),
        Route("/metrics", web.metrics_page),
        Route("/login", web.login_form, methods=["GET"]),
        Route("/login", web.login, methods=["POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/", web.blogs),
        Route("/blogs/{blog}", web.blog),
        Route("/blogs/{blog}/reconcile", web.reconcile, methods=["POST"]),
        Route("/blogs/{blog}/files/{path:path}/retry", web.retry, methods=["POST"]),
        Route("/blogs/{blog}/files/{path:path}", web.file),
        Route("/blogs/{blog}/preview/{path:path}", web.preview),
        _webhook(store, settings, web.triggers),
    ]
    return Starlette(routes=routes)


def _webhook(store: Store, settings: Settings, triggers: Triggers) -> Route | Mount:
    if not settings.dropbox_app_secret:

        async def unconfigured(request: Request) -> Response:
            return PlainTextResponse(
                "the Dropbox webhook needs CONTROLLER_DROPBOX_APP_SECRET\n", status_code=503
            )

        return Route("/webhooks/dropbox", unconfigured, methods=["GET", "POST"])
    from controller.dropbox.webhook import webhook_app

    app = webhook_app(
        app_secret=settings.dropbox_app_secret,
        blogs_by_account=store.dropbox_accounts.blogs_by_account,
        fire=triggers.fire,
    )
    return Mount("/webhooks/dropbox", app=app)
