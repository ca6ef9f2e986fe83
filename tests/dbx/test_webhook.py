"""The Dropbox webhook served for real (uvicorn on a socket), driven over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support import served as serving

from controller.dropbox.webhook import signature, webhook_app
from controller.settings import Settings
from controller.store import BlogRecord, Store
from controller.triggers import Triggers

SECRET = "s3cret"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}")
    store = Store(settings.effective_database_url, auto_upgrade=True)
    for blog_id, account in [("a1", "dbid:A"), ("a2", "dbid:A"), ("b1", "dbid:B")]:
        store.add_blog(
            BlogRecord(
                id=blog_id,
                source_kind="dropbox",
                source_config={"location": "/x", "account_id": account, "folder_id": "id:x"},
                folder=str(tmp_path / blog_id),
            )
        )
    triggers = Triggers(store, settings)
    app = webhook_app(
        app_secret=SECRET,
        blogs_by_account=store.dropbox_accounts.blogs_by_account,
        fire=triggers.fire,
    )
    with serving(app) as url:
        yield url + "/", store
    triggers.close()
    store.close()


def _generations(store: Store) -> dict[str, int]:
    return {b.id: b.generation for b in store.list_blogs()}


def test_verification_echoes_the_challenge_as_plain_text(served: tuple[str, Store]) -> None:
    url, _ = served
    answer = requests.get(url, params={"challenge": "abc123"}, timeout=5)
    assert answer.status_code == 200 and answer.text == "abc123"
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_signed_notification_triggers_the_blogs_of_the_accounts_listed(
    served: tuple[str, Store],
) -> None:
    url, store = served
    body = json.dumps({"list_folder": {"accounts": ["dbid:A"]}, "delta": {"users": [1]}}).encode()
    started = time.monotonic()
    answer = requests.post(
        url, data=body, headers={"X-Dropbox-Signature": signature(SECRET, body)}, timeout=5
    )
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 200 and sorted(answer.json()["triggered"]) == ["a1", "a2"]
    assert _generations(store) == {"a1": 1, "a2": 1, "b1": 0}


@pytest.mark.parametrize(
    "given",
    ["", "0" * 64, "not hex", signature("wrong secret", b'{"list_folder": {"accounts": []}}')],
)
def test_a_bad_signature_is_refused_with_403_and_triggers_nothing(
    served: tuple[str, Store], given: str
) -> None:
    url, store = served
    body = b'{"list_folder": {"accounts": ["dbid:A"]}}'
    answer = requests.post(url, data=body, headers={"X-Dropbox-Signature": given}, timeout=5)
    assert answer.status_code == 403
    assert _generations(store) == {"a1": 0, "a2": 0, "b1": 0}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"list_folder": {}}', b'{"list_folder": {"accounts": [1]}}'],
)
def test_a_signed_body_that_is_not_a_notification_is_a_400(
    served: tuple[str, Store], body: bytes
) -> None:
    url, store = served
    answer = requests.post(
        url, data=body, headers={"X-Dropbox-Signature": signature(SECRET, body)}, timeout=5
    )
    assert answer.status_code == 400
    assert _generations(store) == {"a1": 0, "a2": 0, "b1": 0}


def test_an_account_without_blogs_is_accepted_and_ignored(served: tuple[str, Store]) -> None:
    url, _ = served
    body = b'{"list_folder": {"accounts": ["dbid:nobody"]}}'
    answer = requests.post(
        url, data=body, headers={"X-Dropbox-Signature": signature(SECRET, body)}, timeout=5
    )
    assert answer.status_code == 200 and answer.json() == {"triggered": []}
