"""The dashboard in a real headless Chromium, driven by Playwright.

Debian's Chromium (``/usr/bin/chromium``) is installed by ``.ci/run`` and
``make test`` when missing; outside CI the test skips with the reason when
it is not there. The flow is the seed's: log in, open the file viewer of a
blog with the ``foo: bar: baz`` post, read its error, fix the file in the
source, press "Reconcile now" while ``controller run`` works the blog, and
see the file turn ``synced``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import CONTROLLER, Cli, controller_env, free_port, wait_answering, wait_until

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-t0ken"
BAD_POST = "foo: bar: baz\nxyz\n"
ERROR = "Invalid metadata on line 2: expected 'Key: value'"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must run the browser test, but /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``controller run --http`` on a blog whose one post has broken metadata."""
    src = tmp_path / "src"
    (src / "posts").mkdir(parents=True)
    (src / "posts" / "hello.md").write_text("Title: Hello\n\nA fine post.\n")
    (src / "posts" / "foo.md").write_text(BAD_POST)
    port = free_port()
    cli = Cli(
        controller_env(
            tmp_path,
            CONTROLLER_DASHBOARD_TOKEN=TOKEN,
            CONTROLLER_BLOGS_DIR=str(tmp_path / "blogs"),
            CONTROLLER_POLL_INTERVAL="0.2",
        )
    )
    cli.run("blog", "add", "journal", "--source", f"local:{src}")
    log = (tmp_path / "run.err").open("w")
    proc = subprocess.Popen(
        [str(CONTROLLER), "run", "--no-watch", "--http", f"127.0.0.1:{port}"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url + "/healthz", 60, "the daemon's HTTP server")
        yield url, src
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def test_log_in_read_the_error_fix_the_post_and_reconcile_now(
    browser: object, daemon: tuple[str, Path], tmp_path: Path
) -> None:
    url, src = daemon
    page = browser.new_page(viewport={"width": 420, "height": 900})  # type: ignore[attr-defined]
    page.goto(url + "/")
    assert page.locator('input[name="token"]').is_visible(), "no login form without a session"
    page.fill('input[name="token"]', TOKEN)
    page.click("button[type=submit]")
    page.click("text=journal")

    def reported() -> bool:  # the daemon's first pass may still be running
        page.reload()
        return page.locator("h2", has_text="Problems").count() > 0

    wait_until(reported, 30, "the first pass to report the broken post")
    problem = page.locator(".error").first
    assert problem.inner_text() == ERROR
    page.screenshot(path=str(tmp_path / "file-viewer.png"), full_page=True)
    page.click("#tree >> text=foo.md")
    assert page.locator("#state").inner_text() == "rejected"
    assert page.locator("#error").inner_text() == ERROR
    page.screenshot(path=str(tmp_path / "file-viewer-rejected.png"), full_page=True)

    (src / "posts" / "foo.md").write_text("Title: Foo, fixed\n\nfoo: bar: baz is fine here.\n")
    page.click("text=journal")
    page.click("text=Reconcile now")
    assert "Reconcile requested" in page.locator(".flash").inner_text()

    def synced() -> bool:
        page.goto(url + "/blogs/journal/files/posts/foo.md")
        return page.locator("#state").inner_text() == "synced"

    wait_until(synced, 30, "the fixed post to be synced")
    assert page.locator("#title").inner_text() == "Foo, fixed"
    frame = page.frame_locator("iframe")
    assert "is fine here" in frame.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / "file-viewer-synced.png"), full_page=True)
    shots = os.environ.get("CONTROLLER_SCREENSHOTS")
    if shots:  # `make screenshots` refreshes the README's picture from this run
        shutil.copy(tmp_path / "file-viewer.png", Path(shots) / "file-viewer.png")
