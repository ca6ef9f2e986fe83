"""Running the web app: where it may listen, in the foreground or beside the daemon."""

from __future__ import annotations

import ipaddress
import threading
import time

import uvicorn
from starlette.applications import Starlette

from controller.errors import ConfigError

LOOPBACK_NAMES = {"localhost"}


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"a listen address looks like HOST:PORT, e.g. 127.0.0.1:8080 (got {listen!r})"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """The dashboard shows every blog's files: never on a network without a token."""
    if not token and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the dashboard on {host} without CONTROLLER_DASHBOARD_TOKEN:"
            " set a token, or listen on 127.0.0.1"
        )


def server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config)


def start_in_thread(
    app: Starlette, host: str, port: int
) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve beside the daemon (``controller run --http``); stop with ``should_exit``."""
    instance = server(app, host, port)
    thread = threading.Thread(target=instance.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not instance.started:
        raise ConfigError(f"cannot serve HTTP on {host}:{port} (in use, or not allowed)")
    return instance, thread
