"""The shared per-account client keeps a connection for every download a daemon may run."""

from __future__ import annotations

from pathlib import Path

from controller.dropbox.client import ClientCache
from controller.settings import Settings


def test_the_account_client_pools_a_connection_per_worker_download(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, workers=4, dropbox_concurrency=8, dropbox_app_key="k")
    client = ClientCache(settings).get("dbid:a", refresh_token="r", access_token=None, app_key="k")
    adapter = client._session.get_adapter("https://api.dropboxapi.com/")
    # 4 workers x 8 downloads share this client: fewer pooled connections means
    # connections dropped after each download and a TLS handshake for the next.
    assert adapter._pool_maxsize == 32
