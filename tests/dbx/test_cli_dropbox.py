"""Dropbox through the ``controller`` executable: connecting, authorizing, TLS, long-poll.

The processes reach the fake through the SDK's own ``DROPBOX_API_*_HOST``
variables (set for the whole test run by the conftest) and trust it through
``CONTROLLER_DROPBOX_CA_CERTS``. No token may appear in any output.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
from dbx_blog import APP_KEY, APP_SECRET, ROOT
from support import CONTROLLER, Cli, controller_env, free_port, tree, wait_answering, wait_until

from controller.dropbox.webhook import signature

SPEC = f"dropbox:{ROOT}"


@pytest.fixture
def cli(tmp_path: Path, dropbox_fake: Any) -> Cli:
    return Cli(
        controller_env(
            tmp_path,
            CONTROLLER_DROPBOX_APP_KEY=APP_KEY,
            CONTROLLER_DROPBOX_APP_SECRET=APP_SECRET,
            CONTROLLER_DROPBOX_CA_CERTS=dropbox_fake.ca_path,
            CONTROLLER_BLOGS_DIR=str(tmp_path / "blogs"),
        )
    )


def _no_token_in(token: str, *outputs: str) -> None:
    for output in outputs:
        assert token not in output, "a token was printed"


def test_blog_add_checks_the_token_and_a_pass_mirrors_the_folder(
    cli: Cli, connected: tuple[Any, str, str], tmp_path: Path
) -> None:
    fake, account, refresh = connected
    fake.put(account, f"{ROOT}/Hello.md", b"Title: Hi\n\nhello\n")
    fake.put(account, f"{ROOT}/sub/Notes.txt", b"notes\n")
    added = cli.run("-vv", "blog", "add", "b", "--source", SPEC, "--refresh-token", refresh)
    assert f"added blog b: {SPEC} -> " in added.stdout
    assert fake.calls["users/get_current_account"] == 1
    report = cli.run("-vv", "reconcile", "--blog", "b", "--json")
    assert json.loads(report.stdout)["actions"] == {"set": 2, "move": 0, "drop": 0}
    assert tree(tmp_path / "blogs" / "b") == {
        "hello.md": b"Title: Hi\n\nhello\n",
        "sub": None,
        "sub/notes.txt": b"notes\n",
    }
    listed = cli.run("blog", "list", "--json")
    accounts = cli.run("dropbox", "accounts", "--json")
    [connected_account] = json.loads(accounts.stdout)
    assert connected_account["blogs"] == ["b"] and connected_account["token"] == "refresh"
    _no_token_in(refresh, added.stdout, added.stderr, report.stdout, report.stderr)
    _no_token_in(refresh, listed.stdout, accounts.stdout)


def test_a_refused_token_is_an_error_naming_the_blog_not_the_token(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    message = cli.fails("blog", "add", "b", "--source", SPEC, "--refresh-token", "not-a-token")
    assert "blog b" in message and "not-a-token" not in message
    assert cli.run("blog", "list", "--json").stdout.strip() == "[]"


def test_a_missing_folder_or_a_file_is_refused_at_add_time(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    fake, account, refresh = connected
    fake.put(account, "/Blogs/a file.md", b"x")
    missing = cli.fails("blog", "add", "b", "--source", "dropbox:/Nope", "--refresh-token", refresh)
    assert missing == (
        "error: blog b: there is no folder /Nope in the Dropbox of ann@example.com (not found)"
    )
    a_file = cli.fails(
        "blog", "add", "b", "--source", "dropbox:/Blogs/a file.md", "--refresh-token", refresh
    )
    assert "is a file, not a folder" in a_file


def test_authorize_runs_the_pkce_flow_and_stores_the_refresh_token(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    fake, account, _ = connected
    proc = subprocess.Popen(
        [str(CONTROLLER), "dropbox", "authorize"],
        env=cli.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = proc.stdout.readline().strip()
    assert "code_challenge=" in url and "token_access_type=offline" in url
    code = fake.approve(url, account)
    out, err = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "connected Dropbox account ann@example.com" in out
    assert "refresh token" not in out
    cli.run("blog", "add", "b", "--source", SPEC)  # no token option: the stored account
    cli.run("reconcile", "--blog", "b")


def test_a_short_lived_access_token_works_until_it_expires(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    fake, account, _ = connected
    token = fake.access_token(account)
    cli.run("blog", "add", "b", "--source", SPEC, "--access-token", token)
    cli.run("reconcile", "--blog", "b")
    fake.expire_access_tokens(account)
    message = cli.fails("reconcile", "--blog", "b")
    assert message.startswith(
        "error: blog b: Dropbox refused the credentials (the access token expired"
    )
    _no_token_in(token, message)


def test_the_configured_ca_bundle_wins_over_requests_ca_bundle(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    _, _, refresh = connected
    cli.env["REQUESTS_CA_BUNDLE"] = cli.env["CURL_CA_BUNDLE"] = certifi.where()
    cli.run("blog", "add", "b", "--source", SPEC, "--refresh-token", refresh)
    del cli.env["CONTROLLER_DROPBOX_CA_CERTS"]
    message = cli.fails("reconcile", "--blog", "b")
    assert message.startswith("error: blog b: cannot verify Dropbox's TLS certificate")
    assert "CONTROLLER_DROPBOX_CA_CERTS" in message


def test_controller_run_long_polls_and_applies_a_change_without_a_resync(
    cli: Cli, connected: tuple[Any, str, str], tmp_path: Path
) -> None:
    fake, account, refresh = connected
    cli.run("blog", "add", "b", "--source", SPEC, "--refresh-token", refresh)
    cli.run("reconcile", "--blog", "b")
    log = (tmp_path / "run.err").open("w")
    daemon = subprocess.Popen(
        [str(CONTROLLER), "-v", "run", "--no-watch", "--resync", "3600", "--poll", "0.2"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_until(lambda: fake.calls["files/list_folder/longpoll"] > 0, 30, "a long-poll")
        time.sleep(0.2)
        fake.put(account, f"{ROOT}/Woken.md", b"Title: Woken\n\nby a long-poll\n")
        target = tmp_path / "blogs" / "b" / "woken.md"
        took = wait_until(target.exists, 30, "the long-poll to bring the new post")
        assert took < 10
    finally:
        daemon.terminate()
        daemon.wait(60)
        log.close()
    assert "long-poll" in (tmp_path / "run.err").read_text()


def test_the_webhook_command_serves_the_app_that_triggers_blogs(
    cli: Cli, connected: tuple[Any, str, str]
) -> None:
    _, account, refresh = connected
    cli.run("blog", "add", "b", "--source", SPEC, "--refresh-token", refresh)
    port = free_port()
    server = subprocess.Popen(
        [str(CONTROLLER), "dropbox", "webhook", "--listen", f"127.0.0.1:{port}"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_answering(url + "?challenge=c", 30, "the webhook to answer", expect="c")
        body = json.dumps({"list_folder": {"accounts": [account]}}).encode()
        signed = {"X-Dropbox-Signature": signature(APP_SECRET, body)}
        assert requests.post(url, data=body, headers=signed, timeout=5).status_code == 200
        bad = {"X-Dropbox-Signature": signature("nope", body)}
        assert requests.post(url, data=body, headers=bad, timeout=5).status_code == 403
    finally:
        server.terminate()
        server.wait(30)
    [blog] = json.loads(cli.run("blog", "list", "--json").stdout)
    assert blog["generation"] == 1 and blog["pass_generation"] == 0
