"""``controller run`` (the daemon, optionally serving HTTP) and ``controller serve``."""

from __future__ import annotations

import click

from controller.cli_base import Context, err, pass_context


def _redact(url: str) -> str:
    """A URL fit for printing: no password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at and credentials else url


# -- the daemon ----------------------------------------------------------------


@click.command()
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Worker threads (default 4)."
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=None,
    metavar="SECONDS",
    help="How often to look for due blogs in the store (default 2).",
)
@click.option(
    "--resync",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Periodic resync of every blog, +-10% jitter (default 300).",
)
@click.option("--no-watch", is_flag=True, help="Do not watch local sources for changes.")
@click.option(
    "--http",
    "http_listen",
    default=None,
    metavar="HOST:PORT",
    help="Also serve the dashboard, metrics and probes (as `controller serve`).",
)
@click.option(
    "--no-longpoll",
    is_flag=True,
    help="Do not long-poll Dropbox (when its webhook reaches `controller serve`).",
)
@pass_context
def run(
    ctx: Context,
    workers: int | None,
    poll: float | None,
    resync: float | None,
    no_watch: bool,
    http_listen: str | None,
    no_longpoll: bool,
) -> None:
    """Run the control loop until SIGTERM or SIGINT.

    Worker threads take due blogs: triggered (`controller reconcile
    --enqueue`, a watched local source changed), due for the periodic resync
    or for a failed file's retry, or at the end of a backoff; Dropbox blogs
    are also triggered by a long-poll per connected account. Any number of
    replicas may run against one store; a blog is never run by two at once.
    On SIGTERM/SIGINT the daemon stops taking work, lets passes finish or stop
    at a checkpoint (up to CONTROLLER_SHUTDOWN_GRACE, 25 s), releases its
    leases and exits 0; a second signal exits at once.
    """
    import os
    import signal

    from controller.daemon import Daemon

    overrides = {"workers": workers, "poll_interval": poll, "resync_interval": resync}
    settings = ctx.settings.model_copy(update={k: v for k, v in overrides.items() if v})
    daemon = Daemon(ctx.store, settings, watch=not no_watch, longpoll=not no_longpoll)

    def on_signal(signum: int, _frame: object) -> None:
        if daemon.stopping.is_set():
            os._exit(128 + signum)
        daemon.request_stop()

    http = None
    if http_listen is not None:
        from controller.web.app import build_app
        from controller.web.serve import check_exposure, parse_listen, start_in_thread

        host, port = parse_listen(http_listen)
        check_exposure(host, settings.dashboard_token)
        app = build_app(ctx.store, settings, triggers=daemon.triggers, metrics=daemon.metrics)
        http, _ = start_in_thread(app, host, port)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.start()
    err.print(
        f"controller running: {settings.workers} workers, store "
        f"{ctx.store.engine.url.render_as_string(hide_password=True)}"
        + (f", Redis {_redact(settings.redis_url)}" if settings.redis_url else "")
        + (f", http://{http_listen}/" if http_listen else "")
    )
    while not daemon.wait(1.0):
        pass
    if http is not None:
        http.should_exit = True
    clean = daemon.shutdown()
    err.print("controller stopped" + ("" if clean else " (some passes were still running)"))


# -- web -------------------------------------------------------------------------------


@click.command()
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Where to listen (default: CONTROLLER_HTTP_LISTEN, 127.0.0.1:8080).",
)
@pass_context
def serve(ctx: Context, listen: str | None) -> None:
    """Serve the dashboard, /metrics, /healthz, /readyz and /webhooks/dropbox.

    The dashboard needs CONTROLLER_DASHBOARD_TOKEN (log in with it, or send it
    as a bearer token); without one it is served on a loopback address only.
    Its buttons record triggers: `controller run` does the work.
    """
    from controller.web.app import build_app
    from controller.web.serve import check_exposure, parse_listen, server

    host, port = parse_listen(listen or ctx.settings.http_listen)
    check_exposure(host, ctx.settings.dashboard_token)
    app = build_app(ctx.store, ctx.settings)
    err.print(f"serving on http://{host}:{port}/")
    server(app, host, port).run()
