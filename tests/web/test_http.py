"""``controller serve`` over real HTTP: probes, metrics, auth, CSRF, path escapes, buttons."""

from __future__ import annotations

import http.client
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine
from support import Cli, controller_env, served

from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from controller.web.app import build_app
from controller.web.serve import check_exposure
from reconcilers.core.machine import State
from reconcilers.errors import ControllerError
from reconcilers.outcomes import FetchFailed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blog"
TOKEN = "dashboard-t0ken"
BROKEN = "Invalid metadata on line 2: expected 'Key: value'"


@dataclass
class Site:
    url: str
    store: Store
    settings: Settings
    src: Path
    reconciler: Reconciler

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.url + path, timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def generation(self, blog: str = "sample") -> int:
        return self.store.get_blog(blog).generation


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _site(tmp_path: Path, **overrides: object) -> tuple[Store, Settings, Path, Reconciler]:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLES, src)
    (src / "script.md").write_text(
        "Title: Sneaky\n\n<script>parent.document.title='owned'</script>\n"
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        dashboard_token=TOKEN,
        **overrides,  # type: ignore[arg-type]
    )
    store = Store(settings.effective_database_url, auto_upgrade=True)
    store.add_blog(
        BlogRecord(
            id="sample",
            source_kind="local",
            source_config={"location": str(src)},
            folder=str(tmp_path / "blog"),
        )
    )
    store.add_blog(
        BlogRecord(
            id="gone",
            source_kind="local",
            source_config={"location": str(tmp_path / "nope")},
            folder=str(tmp_path / "g"),
        )
    )
    reconciler = Reconciler(store, settings)
    reconciler.reconcile("sample")
    with pytest.raises(ControllerError):
        reconciler.reconcile("gone")
    return store, settings, src, reconciler


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    store, settings, src, reconciler = _site(tmp_path, dropbox_app_secret="whsecret")
    with served(build_app(store, settings)) as url:
        yield Site(url, store, settings, src, reconciler)
    reconciler.close()
    store.close()


def _logged_in(site: Site) -> requests.Session:
    session = requests.Session()
    answer = session.post(site.url + "/login", data={"token": TOKEN}, allow_redirects=False)
    assert answer.status_code == 303
    return session


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


# -- probes and metrics ----------------------------------------------------------------


def test_probes_answer_without_a_token(site: Site) -> None:
    assert site.get("/healthz").text == "ok\n"
    ready = site.get("/readyz")
    assert ready.status_code == 200 and ready.text == "ready\n"


def test_readyz_is_503_with_the_reason_when_the_store_is_down(site: Site) -> None:
    site.store.views.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    answer = site.get("/readyz")
    assert answer.status_code == 503
    assert answer.text.startswith("not ready: the store does not answer")


def test_readyz_is_503_when_redis_is_configured_and_dead(tmp_path: Path) -> None:
    store, settings, _, reconciler = _site(tmp_path)
    try:
        with served(
            build_app(store, settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
        ) as url:
            answer = requests.get(url + "/readyz", timeout=10)
    finally:
        reconciler.close()
        store.close()
    assert answer.status_code == 503 and "Redis does not answer" in answer.text


def test_metrics_use_controller_runtime_names_and_count_files_by_state(site: Site) -> None:
    text = site.get("/metrics").text
    for name in (
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds",
        "controller_runtime_active_workers",
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_retries_total",
        "controller_actions_total",
        "controller_lease_lost_total",
        "controller_build_errors_total",
        "controller_bytes_fetched_total",
    ):
        assert f"\n{name}" in text or text.startswith(name), name
    assert 'controller_files{state="rejected"} 1.0' in text
    assert 'controller_files{state="synced"} 8.0' in text


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/blogs/sample", "/blogs/sample/files/broken.md", "/blogs/sample/preview/notes.txt"],
)
def test_every_page_needs_the_token_and_leaks_nothing(site: Site, path: str) -> None:
    answer = site.get(path, headers={"Accept": "text/html"})
    assert answer.status_code == 401
    assert "sample" not in answer.text and "broken" not in answer.text
    assert 'name="token"' in answer.text  # the login form
    assert site.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert site.get(path, headers=BEARER).status_code in (200, 404)


def test_every_action_needs_the_token(site: Site) -> None:
    before = site.generation()
    assert site.post("/blogs/sample/reconcile", data={"csrf": "x"}).status_code == 401
    assert site.post("/blogs/sample/files/notes.txt/retry").status_code == 401
    assert site.generation() == before


def test_logging_in_sets_a_strict_http_only_cookie(site: Site) -> None:
    wrong = site.post("/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "not the dashboard" in wrong.text
    right = site.post("/login", data={"token": TOKEN})
    cookie = right.headers["set-cookie"]
    assert right.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie, "the cookie holds a MAC of the token, not the token"
    session = _logged_in(site)
    assert "sample" in session.get(site.url + "/").text


def test_a_cookie_post_without_the_csrf_token_is_refused(site: Site) -> None:
    session = _logged_in(site)
    before = site.generation()
    refused = session.post(site.url + "/blogs/sample/reconcile", data={}, allow_redirects=False)
    assert refused.status_code == 403
    forged = session.post(site.url + "/blogs/sample/reconcile", data={"csrf": "0" * 64})
    assert forged.status_code == 403 and site.generation() == before
    csrf = _csrf(session.get(site.url + "/blogs/sample").text)
    done = session.post(
        site.url + "/blogs/sample/reconcile", data={"csrf": csrf}, allow_redirects=False
    )
    assert done.status_code == 303 and site.generation() == before + 1


def test_a_bearer_token_needs_no_csrf_token(site: Site) -> None:
    before = site.generation()
    assert site.post("/blogs/sample/reconcile", headers=BEARER).status_code == 303
    assert site.generation() == before + 1


def test_without_a_token_the_dashboard_is_loopback_only() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("0.0.0.0", "a-token")
    with pytest.raises(ControllerError, match=r"refusing to serve the dashboard on 0\.0\.0\.0"):
        check_exposure("0.0.0.0", None)
    with pytest.raises(ControllerError):
        check_exposure("192.168.1.5", None)


# -- pages ----------------------------------------------------------------------------------


def test_the_blogs_page_shows_status_counts_and_a_banner_for_blog_errors(site: Site) -> None:
    page = site.get("/", headers=BEARER).text
    assert "sample" in page and "8 synced" in page and "1 rejected" in page
    assert 'class="banner"' in page and "does not exist" in page


def test_the_file_viewer_shows_states_and_the_exact_build_error(site: Site) -> None:
    page = site.get("/blogs/sample", headers=BEARER).text
    assert "Invalid metadata on line 2: expected &#39;Key: value&#39;" in page
    assert 'state-rejected">rejected' in page and 'state-synced">synced' in page
    assert "<summary>drafts/</summary>" in page
    history = page.split("<h2>History</h2>")[1]
    assert "set" in history and "broken.md" in history


def test_a_post_page_shows_its_entry_and_a_sandboxed_preview(site: Site) -> None:
    page = site.get("/blogs/sample/files/script.md", headers=BEARER)
    assert page.headers["x-frame-options"] == "DENY"
    assert 'id="title">Sneaky' in page.text and "<script>" not in page.text
    assert '<iframe sandbox=""' in page.text
    preview = site.get("/blogs/sample/preview/script.md", headers=BEARER)
    assert preview.status_code == 200 and "<script>" in preview.text
    assert preview.headers["content-security-policy"].startswith("sandbox;")
    broken = site.get("/blogs/sample/files/broken.md", headers=BEARER).text
    assert 'id="error">' + BROKEN.replace("'", "&#39;") in broken


@pytest.mark.parametrize(
    "raw",
    [
        "/blogs/sample/files/../../../../etc/passwd",
        "/blogs/sample/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/blogs/sample/files/..%2f..%2f..%2fetc%2fpasswd",
        "/blogs/sample/files//etc/passwd",
        "/blogs/sample/files/%2Fetc%2Fpasswd",
        "/blogs/sample/preview/../../../../etc/passwd",
        "/blogs/sample/preview/%2e%2e%2f%2e%2e%2fc.db",
        "/blogs/..%2f..%2fetc/files/passwd",
        "/blogs/sample/files/drafts/../../c.db",
    ],
)
def test_no_url_reads_outside_a_blog(site: Site, raw: str) -> None:
    """Sent byte for byte (no client-side normalisation)."""
    parts = urlsplit(site.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", raw, headers=BEARER)
    answer = conn.getresponse()
    body = answer.read().decode("utf-8", "replace")
    conn.close()
    assert answer.status in (404, 400), (answer.status, body[:200])
    assert "root:" not in body and "SQLite" not in body


def test_retry_asks_the_next_pass_to_try_a_failed_file_at_once(site: Site) -> None:
    notes = site.store.load_remote("sample")["notes.txt"]
    site.store.record("sample", [FetchFailed(notes, "connection reset")], 0)
    site.store.record("sample", [FetchFailed(notes, "connection reset")], 2**61)
    assert site.store.state_of("sample", "notes.txt") is State.FAILED
    session = _logged_in(site)
    page = session.get(site.url + "/blogs/sample/files/notes.txt").text
    assert ">Retry</button>" in page and "connection reset" in page
    before = site.generation()
    answer = session.post(
        site.url + "/blogs/sample/files/notes.txt/retry",
        data={"csrf": _csrf(page)},
        allow_redirects=False,
    )
    assert answer.status_code == 303 and site.generation() == before + 1
    site.reconciler.reconcile("sample")
    assert site.store.state_of("sample", "notes.txt") is State.SYNCED


def test_the_dropbox_webhook_is_mounted(site: Site) -> None:
    answer = site.get("/webhooks/dropbox/?challenge=abc")
    assert answer.status_code == 200 and answer.text == "abc"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_unknown_blogs_and_files_are_404(site: Site) -> None:
    assert site.get("/blogs/nope", headers=BEARER).status_code == 404
    assert site.get("/blogs/sample/files/nope.md", headers=BEARER).status_code == 404
    assert site.post("/blogs/nope/reconcile", headers=BEARER).status_code == 404


def test_controller_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    cli = Cli(controller_env(tmp_path))
    message = cli.fails("serve", "--listen", "0.0.0.0:8080")
    assert message == (
        "error: refusing to serve the dashboard on 0.0.0.0 without CONTROLLER_DASHBOARD_TOKEN:"
        " set a token, or listen on 127.0.0.1"
    )
