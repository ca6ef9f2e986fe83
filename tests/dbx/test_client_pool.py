"""The shared per-account client keeps a connection for every download a daemon may run."""

from __future__ import annotations

from pathlib import Path

import pytest
from dropbox import session as hosts

from controller.dropbox.client import ClientCache, session_for
from controller.settings import Settings


def test_the_account_client_pools_a_connection_per_worker_download(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, workers=4, dropbox_concurrency=8, dropbox_app_key="k")
    client = ClientCache(settings).get("dbid:a", refresh_token="r", access_token=None, app_key="k")
    adapter = client._session.get_adapter("https://api.dropboxapi.com/")
    # 4 workers x 8 downloads share this client: fewer pooled connections means
    # connections dropped after each download and a TLS handshake for the next.
    assert adapter._pool_maxsize == 32


def test_sessions_read_proxies_once_and_keep_no_proxy_exceptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The environment is read when the session is made, not on every request."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", hosts.API_CONTENT_HOST)
    session = session_for(Settings())
    assert not session.trust_env
    assert session.proxies == {
        f"https://{hosts.API_HOST}": "http://proxy.example:3128",
        f"https://{hosts.API_NOTIFICATION_HOST}": "http://proxy.example:3128",
    }
