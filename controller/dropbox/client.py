"""SDK clients: our CA bundle really used, the SDK's sleeping retries off.

``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a
session's ``verify`` whenever it trusts the environment, and reads the
environment's proxy settings again on every request (a walk of ``os.environ``
per download: 4% of a replica's CPU in S8). Our sessions do not trust the
environment: the proxies are read once, when the session is made.
"""

from __future__ import annotations

import threading

import dropbox
import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from controller.errors import ConfigError
from controller.settings import Settings

#: Seconds before an SDK request gives up (downloads stream within this per read).
TIMEOUT = 60.0


def _proxies() -> dict[str, str]:
    """The environment's proxy for each host the SDK talks to, NO_PROXY applied."""
    from dropbox import session as hosts

    proxies = {}
    for host in (hosts.API_HOST, hosts.API_CONTENT_HOST, hosts.API_NOTIFICATION_HOST):
        proxy = get_environ_proxies(f"https://{host}").get("https")
        if proxy:
            proxies[f"https://{host}"] = proxy
    return proxies


def session_for(settings: Settings, pool: int = 8) -> requests.Session:
    """A session that verifies Dropbox against CONTROLLER_DROPBOX_CA_CERTS when set."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = _proxies()
    if settings.dropbox_ca_certs is not None:
        session.verify = str(settings.dropbox_ca_certs)
    session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=max(pool, 4)))
    return session


def make_client(
    settings: Settings,
    *,
    access_token: str | None = None,
    refresh_token: str | None = None,
    app_key: str | None = None,
    app_secret: str | None = None,
    pool: int = 8,
    timeout: float = TIMEOUT,
) -> dropbox.Dropbox:
    """A client that fails fast: the source schedules every retry itself."""
    key = app_key or settings.dropbox_app_key
    if refresh_token and not key:
        raise ConfigError(
            "a refresh token needs the app key: set CONTROLLER_DROPBOX_APP_KEY or --app-key"
        )
    return dropbox.Dropbox(
        oauth2_access_token=access_token,
        oauth2_refresh_token=refresh_token,
        app_key=key if refresh_token else None,
        app_secret=(app_secret or settings.dropbox_app_secret) if refresh_token else None,
        max_retries_on_error=0,
        max_retries_on_rate_limit=0,
        session=session_for(settings, pool),
        timeout=timeout,
        user_agent="blog-controller",
    )


class ClientCache:
    """One client per account and process, so a refreshed access token is reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str | None, str | None], dropbox.Dropbox] = {}

    def get(
        self,
        account_id: str,
        *,
        refresh_token: str | None,
        access_token: str | None,
        app_key: str | None,
    ) -> dropbox.Dropbox:
        key = (account_id, refresh_token, access_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = make_client(
                    self.settings,
                    access_token=access_token,
                    refresh_token=refresh_token,
                    app_key=app_key,
                    # Every worker of the daemon may download for this account at
                    # once; a smaller pool drops connections (a TLS handshake each).
                    pool=self.settings.dropbox_concurrency * self.settings.workers,
                )
                self._clients[key] = client
            return client
