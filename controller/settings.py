"""One settings object, read from ``CONTROLLER_*`` once and passed down."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "blog-controller"


def _data_dir() -> Path:
    return user_data_path(APP_NAME)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", extra="ignore")

    data_dir: Path = Field(default_factory=_data_dir)
    database_url: str | None = None
    blogs_dir: Path | None = None
    #: Share of a blog's files a pass may drop after an empty listing.
    max_drop_share: float = 0.5
    history_limit: int = 1000
    #: How many files are fetched and made durable together.
    install_batch: int = 1000
    #: Observe -> plan -> execute rounds per reconcile before giving up on a
    #: source that keeps changing.
    max_rounds: int = 20
    #: Redis for leases and cross-replica wake-ups; leases live in the store's
    #: database when unset.
    redis_url: str | None = None
    #: A lease lasts this long unless renewed, and is renewed this often.
    lease_ttl: float = 30.0
    lease_renew: float = 10.0
    #: ``controller run``: worker threads, periodic resync (seconds, +-10%
    #: jitter), full validation, store polling without Redis, and the grace
    #: period in-flight passes get on SIGTERM.
    workers: int = 4
    resync_interval: float = 300.0
    full_interval: float = 86_400.0
    poll_interval: float = 2.0
    shutdown_grace: float = 25.0
    #: Backoff after failed passes: full jitter between 0 and base * 2^n, capped.
    backoff_base: float = 1.0
    backoff_cap: float = 900.0
    #: The dashboard's shared secret (login form or ``Authorization: Bearer``);
    #: ``controller serve`` refuses a non-loopback address without it.
    dashboard_token: str | None = Field(default=None, repr=False)
    #: Where ``controller serve`` listens.
    http_listen: str = "127.0.0.1:8080"
    #: Builds run in worker processes (0: one per CPU) with a timeout and a
    #: memory cap (bytes, RLIMIT_AS; 0: none). ``builders`` maps file suffixes
    #: to builder names (entry points ``controller.builders``), over the
    #: defaults; an empty name stops building that suffix.
    build_workers: int = 0
    build_timeout: float = 30.0
    build_memory_limit: int = 1024**3
    builders: dict[str, str] = Field(default_factory=dict)
    #: Dropbox: the app's credentials (needed to refresh tokens and to check
    #: webhook signatures), a CA bundle that replaces the system's for Dropbox
    #: connections (a TLS-intercepting proxy, a local fake), parallel
    #: downloads per blog, the largest file mirrored, and the long-poll timeout.
    dropbox_app_key: str | None = None
    dropbox_app_secret: str | None = Field(default=None, repr=False)
    dropbox_ca_certs: Path | None = None
    dropbox_concurrency: int = 8
    dropbox_max_file_size: int = 100 * 1024 * 1024
    dropbox_longpoll_timeout: int = 30

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'controller.db'}"

    @property
    def effective_blogs_dir(self) -> Path:
        return self.blogs_dir if self.blogs_dir is not None else self.data_dir / "blogs"
