"""Shared test configuration: Hypothesis profiles.

``ci`` (300 derandomized examples, no deadline) is loaded when ``CI=true``;
``dev`` (100 examples) otherwise. ``HYPOTHESIS_PROFILE`` overrides both.
"""

from __future__ import annotations

import os

# -- Dropbox fake ----------------------------------------------------------------
#
# The SDK reads DROPBOX_API_HOST and friends once, when ``dropbox.session`` is
# first imported. So this process binds its fake's port here, before anything
# can import ``dropbox``, and points all four hosts at it; subprocesses that
# tests start inherit the variables. The fixtures are at the end of this file.
from dropbox_fake import FakeDropbox, prebound_listener, sdk_environment

os.environ.update(sdk_environment(prebound_listener()))
# -- end of Dropbox fake (top) ----------------------------------------------------

from hypothesis import settings

settings.register_profile("ci", max_examples=300, derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
)


# -- backends -----------------------------------------------------------------
#
# Store tests run once per backend. SQLite always runs; PostgreSQL runs when
# CONTROLLER_TEST_POSTGRES_URL answers, is skipped with a visible reason when it
# does not, and fails the run in CI (CI=true), where backends must not skip.

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from support import truncate_store  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("CONTROLLER_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("CONTROLLER_TEST_REDIS_URL")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must run backend tests, but {reason}")
    pytest.skip(reason)


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema on the test server for this worker (xdist-safe)."""
    if not POSTGRES_URL:
        _unavailable("no PostgreSQL server: set CONTROLLER_TEST_POSTGRES_URL")
    base = _psycopg(POSTGRES_URL)  # type: ignore[arg-type]
    schema = f"t_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    try:
        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure means "no server"
        _unavailable(f"PostgreSQL at {POSTGRES_URL} does not answer: {exc}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'controller.db'}"
    url = request.getfixturevalue("postgres_url")
    truncate_store(url)
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[object]:
    from controller.store import Store

    instance = Store(database_url, auto_upgrade=True)
    yield instance
    instance.close()


@pytest.fixture
def redis_url() -> str:
    """An emptied Redis database of this xdist worker's own (gw0 -> 1, gw1 -> 2, ...)."""
    if not REDIS_URL:
        _unavailable("no Redis server: set CONTROLLER_TEST_REDIS_URL")
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = 1 + (int(worker) if worker.isdigit() else 0) % 15
    url = urlsplit(REDIS_URL)._replace(path=f"/{index}").geturl()  # type: ignore[arg-type]
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS_URL} does not answer: {exc}")
    return url


# -- Dropbox fake ----------------------------------------------------------------
#
# One fake per pytest process (xdist workers are processes), on the socket bound
# at the top of this file; each test gets it emptied.


@pytest.fixture(scope="session")
def dropbox_server() -> Iterator[FakeDropbox]:
    fake = FakeDropbox()
    fake.start(sock=prebound_listener())
    yield fake
    fake.stop()


@pytest.fixture
def dropbox_fake(dropbox_server: FakeDropbox) -> FakeDropbox:
    """The process's fake, emptied: no accounts, files, faults, counters or latency."""
    dropbox_server.reset()
    return dropbox_server


# -- end of Dropbox fake ------------------------------------------------------------
