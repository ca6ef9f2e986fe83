"""The Dropbox fake, checked through the real, unmodified ``dropbox`` SDK.

Everything here goes over HTTPS to the fake: if the SDK parses it, a product
test built on the fake exercises the same code paths it would against Dropbox.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import certifi
import dropbox
import pytest
import requests
from dropbox import Dropbox, files
from dropbox.exceptions import (
    ApiError,
    AuthError,
    BadInputError,
    InternalServerError,
    RateLimitError,
)
from dropbox.oauth import DropboxOAuth2FlowNoRedirect
from dropbox_fake import FakeDropbox, content_hash

BLOCK = 4 * 1024 * 1024


class _Session(requests.Session):
    """Verifies against ``self.verify`` even where REQUESTS_CA_BUNDLE is set, as here."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings


def session(ca: str) -> requests.Session:
    s = _Session()
    s.verify = ca
    s.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    return s


def client(fake: FakeDropbox, token: str | None = None, **kw: Any) -> dropbox.Dropbox:
    kw.setdefault("max_retries_on_error", 0)
    kw.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(token, session=session(fake.ca_path), ca_certs=fake.ca_path, **kw)


def sdk_hash(data: bytes) -> str:
    """Dropbox's reference algorithm, written out here independently of the fake."""
    digests = b"".join(
        hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK)
    )
    return hashlib.sha256(digests).hexdigest()


def drain(dbx: dropbox.Dropbox, result: files.ListFolderResult) -> tuple[list[Any], str]:
    entries = list(result.entries)
    while result.has_more:
        result = dbx.files_list_folder_continue(result.cursor)
        entries += result.entries
    return entries, result.cursor


def summary(entries: list[Any]) -> list[tuple[str, str]]:
    kinds = {
        files.FileMetadata: "file",
        files.FolderMetadata: "folder",
        files.DeletedMetadata: "deleted",
    }
    return [(kinds[type(e)], e.path_display) for e in entries]


def reason(exc: ApiError) -> str:
    error = exc.error
    if error.is_path():
        path = error.get_path()
        return "path/" + next(
            t for t in ("not_found", "not_folder", "not_file") if getattr(path, "is_" + t)()
        )
    return "reset" if error.is_reset() else str(error)


def assert_parents_first(entries: list[Any], known: str) -> None:
    seen = {known}
    for e in entries:
        assert e.path_lower.rsplit("/", 1)[0] in seen, e.path_lower
        seen.add(e.path_lower)


@pytest.fixture
def fake(dropbox_fake: FakeDropbox) -> FakeDropbox:
    return dropbox_fake


@pytest.fixture
def acct(fake: FakeDropbox) -> str:
    return fake.add_account(email="ann@example.com", display_name="Ann Example")


@pytest.fixture
def dbx(fake: FakeDropbox, acct: str) -> dropbox.Dropbox:
    return client(fake, fake.access_token(acct))


# -- accounts and metadata ----------------------------------------------------------------


def test_get_current_account_is_a_full_account(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    me = dbx.users_get_current_account()
    assert isinstance(me, dropbox.users.FullAccount)
    assert (me.account_id, me.email, me.name.display_name) == (
        acct,
        "ann@example.com",
        "Ann Example",
    )
    assert me.account_type.is_basic() and isinstance(me.root_info, dropbox.common.UserRootInfo)
    assert fake.calls["users/get_current_account"] == 1


def test_get_metadata_by_path_and_id(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    folder_id = fake.mkdir(acct, "/Blogs/My Blog")
    put = fake.put(acct, "/Blogs/My Blog/Post.md", b"hi", client_modified="2020-01-02T03:04:05Z")
    md = dbx.files_get_metadata("/blogs/MY BLOG/post.md")
    assert isinstance(md, files.FileMetadata)
    assert (md.id, md.rev, md.path_display, md.path_lower) == (
        put["id"],
        put["rev"],
        "/Blogs/My Blog/Post.md",
        "/blogs/my blog/post.md",
    )
    assert md.client_modified == datetime(2020, 1, 2, 3, 4, 5) and md.size == 2
    folder = dbx.files_get_metadata(folder_id)
    assert isinstance(folder, files.FolderMetadata) and folder.path_display == "/Blogs/My Blog"
    with pytest.raises(ApiError) as err:
        dbx.files_get_metadata("/nope")
    assert reason(err.value) == "path/not_found"
    assert err.value.error.get_path().is_not_found()


# -- list_folder -------------------------------------------------------------------------------


def test_list_folder_root_path_id_and_recursive(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    blog = fake.mkdir(acct, "/Blogs/My Blog")
    fake.put(acct, "/Blogs/My Blog/Post.md", b"a")
    fake.put(acct, "/Blogs/My Blog/img/A.png", b"b")
    fake.put(acct, "/Other.txt", b"c")
    assert sorted(summary(dbx.files_list_folder("").entries)) == [
        ("file", "/Other.txt"),
        ("folder", "/Blogs"),
    ]
    assert sorted(summary(dbx.files_list_folder("/blogs/my blog").entries)) == [
        ("file", "/Blogs/My Blog/Post.md"),
        ("folder", "/Blogs/My Blog/img"),
    ]
    entries = dbx.files_list_folder(blog, recursive=True).entries
    assert summary(entries)[0] == ("folder", "/Blogs/My Blog")  # the listed folder itself
    assert entries[0].id == blog
    assert sorted(summary(entries[1:])) == [
        ("file", "/Blogs/My Blog/Post.md"),
        ("file", "/Blogs/My Blog/img/A.png"),
        ("folder", "/Blogs/My Blog/img"),
    ]
    assert_parents_first(dbx.files_list_folder("", recursive=True).entries, "")


def test_list_folder_pages_at_the_smaller_of_limit_and_page_size(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    for i in range(7):
        fake.put(acct, f"/f/{i}.md", b"x")
    first = dbx.files_list_folder("/f", limit=2)
    assert len(first.entries) == 2 and first.has_more
    entries, _ = drain(dbx, first)
    assert sorted(e.name for e in entries) == [f"{i}.md" for i in range(7)]
    assert fake.calls["files/list_folder/continue"] == 3
    fake.page_size = 3
    result = dbx.files_list_folder("/f", limit=100)
    assert len(result.entries) == 3 and result.has_more
    assert len(drain(dbx, result)[0]) == 7


def test_list_folder_errors(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    fake.put(acct, "/file.txt", b"x")
    for path, expected in [("/missing", "path/not_found"), ("/file.txt", "path/not_folder")]:
        with pytest.raises(ApiError) as err:
            dbx.files_list_folder(path)
        assert reason(err.value) == expected
    with pytest.raises(ApiError) as err:
        dbx.files_list_folder("id:AAAAAAAAAAAAAAAAAAAAAA")
    assert reason(err.value) == "path/not_found"


# -- list_folder/continue -----------------------------------------------------------------------


def test_continue_reports_file_put_edit_and_delete(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.put(acct, "/b/old.md", b"old")
    _, cursor = drain(dbx, dbx.files_list_folder("/b", recursive=True))
    created = fake.put(acct, "/b/New.md", b"one")
    result = dbx.files_list_folder_continue(cursor)
    assert summary(result.entries) == [("file", "/b/New.md")] and not result.has_more
    edited = fake.put(acct, "/b/new.md", b"two")
    (entry,) = dbx.files_list_folder_continue(result.cursor).entries
    assert entry.id == created["id"] and entry.rev != created["rev"]
    assert entry.path_display == "/b/New.md" and entry.content_hash == sdk_hash(b"two")
    assert edited["rev"] == entry.rev
    fake.delete(acct, "/b/old.md")
    result = dbx.files_list_folder_continue(cursor)  # an old cursor: current state only
    assert summary(result.entries) == [("file", "/b/New.md"), ("deleted", "/b/old.md")]
    assert dbx.files_list_folder_continue(result.cursor).entries == []


def test_continue_reports_a_deleted_folder_once(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    for name in ("a.md", "b.md", "sub/c.md"):
        fake.put(acct, f"/b/Posts/{name}", b"x")
    _, cursor = drain(dbx, dbx.files_list_folder("", recursive=True))
    fake.put(acct, "/b/Posts/late.md", b"y")  # made and gone between two calls
    fake.delete(acct, "/B/posts")
    entries = dbx.files_list_folder_continue(cursor).entries
    assert summary(entries) == [("deleted", "/b/Posts")]
    assert isinstance(entries[0], files.DeletedMetadata) and entries[0].path_lower == "/b/posts"


def test_continue_reports_a_folder_made_again_after_its_delete(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.put(acct, "/b/f/old.md", b"x")
    _, cursor = drain(dbx, dbx.files_list_folder("", recursive=True))
    fake.delete(acct, "/b/f")
    fake.put(acct, "/b/f/new.md", b"y")
    entries = dbx.files_list_folder_continue(cursor).entries
    assert summary(entries) == [("deleted", "/b/f"), ("folder", "/b/f"), ("file", "/b/f/new.md")]


def test_continue_reports_a_moved_folder_as_delete_plus_new_subtree(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    folder = fake.mkdir(acct, "/b/Drafts")
    post = fake.put(acct, "/b/Drafts/p.md", b"x")
    deep = fake.put(acct, "/b/Drafts/img/i.png", b"y")
    _, cursor = drain(dbx, dbx.files_list_folder("", recursive=True))
    fake.move(acct, "/b/Drafts", "/b/Published/2024")
    entries = dbx.files_list_folder_continue(cursor).entries
    assert summary(entries)[0] == ("deleted", "/b/Drafts")
    assert sorted(summary(entries[1:])) == [
        ("file", "/b/Published/2024/img/i.png"),
        ("file", "/b/Published/2024/p.md"),
        ("folder", "/b/Published"),
        ("folder", "/b/Published/2024"),
        ("folder", "/b/Published/2024/img"),
    ]
    assert_parents_first(entries[1:], "/b")
    by_path = {e.path_lower: e for e in entries}
    assert by_path["/b/published/2024"].id == folder
    assert (by_path["/b/published/2024/p.md"].id, by_path["/b/published/2024/p.md"].rev) == (
        post["id"],
        post["rev"],
    )
    assert by_path["/b/published/2024/img/i.png"].id == deep["id"]


def test_case_only_rename_is_not_reported_but_listed(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    post = fake.put(acct, "/b/post.md", b"x")
    _, cursor = drain(dbx, dbx.files_list_folder("", recursive=True))
    fake.move(acct, "/b/post.md", "/b/Post.md")
    fake.move(acct, "/b", "/B")
    assert dbx.files_list_folder_continue(cursor).entries == []
    listed = dbx.files_list_folder("", recursive=True).entries
    assert summary(listed) == [("folder", "/B"), ("file", "/B/Post.md")]
    assert listed[1].id == post["id"] and listed[1].rev == post["rev"]


def test_listing_by_id_follows_the_folder_when_it_moves(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    blog = fake.mkdir(acct, "/Blogs/My Blog")
    post = fake.put(acct, "/Blogs/My Blog/post.md", b"x")
    _, cursor = drain(dbx, dbx.files_list_folder(blog, recursive=True))
    fake.put(acct, "/Blogs/My Blog/new.md", b"n")
    fake.move(acct, "/Blogs/My Blog", "/Archive/Old Blog")
    fake.put(acct, "/Blogs/unrelated.md", b"u")
    result = dbx.files_list_folder_continue(cursor)
    assert not any(isinstance(e, files.DeletedMetadata) for e in result.entries)
    by_path = {e.path_display: e for e in result.entries}
    assert set(by_path) == {
        "/Archive/Old Blog",
        "/Archive/Old Blog/post.md",
        "/Archive/Old Blog/new.md",
    }
    moved = by_path["/Archive/Old Blog/post.md"]
    assert (moved.id, moved.rev) == (post["id"], post["rev"])
    fake.put(acct, "/Archive/Old Blog/later.md", b"l")
    later = dbx.files_list_folder_continue(result.cursor).entries
    assert summary(later) == [("file", "/Archive/Old Blog/later.md")]
    fake.delete(acct, "/Archive")
    with pytest.raises(ApiError) as err:
        dbx.files_list_folder_continue(cursor)
    assert reason(err.value) == "path/not_found"


def test_latest_cursor_sees_only_later_changes(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    fake.put(acct, "/b/before.md", b"x")
    cursor = dbx.files_list_folder_get_latest_cursor("/b", recursive=True).cursor
    fake.put(acct, "/b/after.md", b"y")
    assert summary(dbx.files_list_folder_continue(cursor).entries) == [("file", "/b/after.md")]
    with pytest.raises(ApiError) as err:
        dbx.files_list_folder_get_latest_cursor("/none")
    assert reason(err.value) == "path/not_found"


def test_cursor_reset_by_reset_cursors_and_by_fault(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.mkdir(acct, "/b")
    cursor = dbx.files_list_folder_get_latest_cursor("/b").cursor
    fake.fail("files/list_folder/continue", "reset")
    with pytest.raises(ApiError) as err:
        dbx.files_list_folder_continue(cursor)
    assert err.value.error.is_reset()
    assert dbx.files_list_folder_continue(cursor).entries == []  # the fault was used up
    fake.reset_cursors(acct)
    for call in (dbx.files_list_folder_continue, dbx.files_list_folder_longpoll):
        with pytest.raises(ApiError) as err:
            call(cursor)
        assert err.value.error.is_reset()
    fresh = dbx.files_list_folder("/b").cursor
    assert dbx.files_list_folder_continue(fresh).entries == []
    with pytest.raises(ApiError) as err:
        dbx.files_list_folder_continue("AAnot-a-cursor")
    assert err.value.error.is_reset()


# -- download --------------------------------------------------------------------------------


def test_download_by_path_id_and_rev(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    v1 = fake.put(acct, "/b/Post.md", b"version one")
    v2 = fake.put(acct, "/b/post.md", b"version two!")
    assert v1["id"] == v2["id"] and v1["rev"] != v2["rev"]
    for path, body, rev in [
        ("/B/POST.md", b"version two!", v2["rev"]),
        (v1["id"], b"version two!", v2["rev"]),
        ("rev:" + v1["rev"], b"version one", v1["rev"]),
    ]:
        md, resp = dbx.files_download(path)
        assert resp.content == body and int(resp.headers["Content-Length"]) == len(body)
        assert (md.rev, md.size, md.id, md.path_display) == (rev, len(body), v1["id"], "/b/Post.md")
        assert md.content_hash == sdk_hash(body)
    assert [d[2] for d in fake.downloads] == [v2["rev"], v2["rev"], v1["rev"]]
    for path, expected in [("/b/none", "path/not_found"), ("/b", "path/not_file")]:
        with pytest.raises(ApiError) as err:
            dbx.files_download(path)
        assert reason(err.value) == expected


def test_non_ascii_names_survive_the_result_header(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    put = fake.put(acct, "/Blög/Ünïcode ☃.md", "snow ☃".encode())
    md, resp = dbx.files_download("/blög/ünïcode ☃.md")
    assert (md.path_display, md.id, resp.content) == (
        "/Blög/Ünïcode ☃.md",
        put["id"],
        "snow ☃".encode(),
    )
    (entry,) = dbx.files_list_folder("/Blög").entries
    assert entry.name == "Ünïcode ☃.md" and entry.path_lower == "/blög/ünïcode ☃.md"


def test_content_hash_of_empty_and_multi_block_files(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    big = bytes(range(256)) * (BLOCK // 256) + b"tail"
    for name, data in [("empty", b""), ("big", big)]:
        put = fake.put(acct, f"/{name}", data)
        md, resp = dbx.files_download(f"/{name}")
        assert resp.content == data
        assert md.content_hash == put["content_hash"] == sdk_hash(data) == content_hash(data)
    assert content_hash(b"") == hashlib.sha256(b"").hexdigest()


def test_truncated_download_breaks_mid_body(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    data = b"0123456789" * 10_000
    fake.put(acct, "/t.bin", data)
    fake.fail("files/download", "truncate")
    md, resp = dbx.files_download("/t.bin")
    assert int(resp.headers["Content-Length"]) == len(data) == md.size
    try:
        got = resp.content
    except (requests.exceptions.RequestException, OSError):
        pass  # urllib3 notices the short body: the usual outcome
    else:
        assert len(got) < len(data)
    assert dbx.files_download("/t.bin")[1].content == data


def test_corrupt_download_has_the_same_length_and_other_bytes(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.put(acct, "/c.md", b"good bytes")
    fake.fail("files/download", "corrupt")
    md, resp = dbx.files_download("/c.md")
    assert len(resp.content) == md.size == 10 and resp.content != b"good bytes"
    assert sdk_hash(resp.content) != md.content_hash


def test_download_fault_for_one_path_spares_others(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.put(acct, "/a.md", b"a")
    fake.put(acct, "/B.md", b"b")
    fake.fail("files/download", "server_error", times=2, path="/b.md")
    assert dbx.files_download("/a.md")[1].content == b"a"
    for _ in range(2):
        with pytest.raises(InternalServerError):
            dbx.files_download("/b.md")
    assert dbx.files_download("/b.md")[1].content == b"b"


def test_on_download_hook_runs_after_capture(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    old = fake.put(acct, "/p.md", b"old")
    fake.on_download("/P.md", lambda: fake.put(acct, "/p.md", b"new"))
    md, resp = dbx.files_download("/p.md")
    assert (resp.content, md.rev) == (b"old", old["rev"])
    assert fake.metadata(acct, "/p.md")["rev"] != old["rev"]  # type: ignore[index]
    assert dbx.files_download("/p.md")[1].content == b"new"


def test_parallel_downloads_over_keep_alive(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    bodies = {f"/blog/{i}.md": f"post {i}".encode() * (i + 1) for i in range(32)}
    for path, body in bodies.items():
        fake.put(acct, path, body)
    fake.latency["files/download"] = 0.02
    before = fake.connections
    with ThreadPoolExecutor(16) as pool:
        got = dict(
            zip(bodies, pool.map(lambda p: dbx.files_download(p)[1].content, bodies), strict=True)
        )
    assert got == bodies
    assert fake.connections - before <= 16 < len(bodies)
    before = fake.connections
    for _ in range(10):
        dbx.files_get_metadata("/blog/0.md")
    assert fake.connections - before <= 1


# -- errors the SDK turns into exceptions -------------------------------------------------------


def test_rate_limit_gives_rate_limit_error_with_backoff(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.fail("files/list_folder", "rate_limit", retry_after=7)
    with pytest.raises(RateLimitError) as err:
        dbx.files_list_folder("")
    assert err.value.backoff == 7 and err.value.error.reason.is_too_many_requests()
    patient = client(fake, fake.access_token(acct), max_retries_on_rate_limit=None)
    fake.fail("files/list_folder", "rate_limit", times=2, retry_after=0)
    assert patient.files_list_folder("").entries == []
    assert fake.calls["files/list_folder"] == 4  # retries are requests too


def test_server_errors_give_internal_server_error(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.fail("files/get_metadata", "server_error")
    fake.fail("files/get_metadata", "server_error", status=503)
    for status in (500, 503):
        with pytest.raises(InternalServerError) as err:
            dbx.files_get_metadata("/x")
        assert err.value.status_code == status
    with pytest.raises(ValueError):
        fake.fail("files/get_metadata", "truncate")


# -- tokens -------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_transparently(fake: FakeDropbox, acct: str) -> None:
    fake.add_app("key", "secret")
    old = fake.access_token(acct)
    fake.expire_access_tokens(acct)
    dbx = client(
        fake,
        old,
        oauth2_refresh_token=fake.refresh_token(acct, "key"),
        oauth2_access_token_expiration=datetime.utcnow() + timedelta(hours=3),
        app_key="key",
        app_secret="secret",
    )
    assert dbx.users_get_current_account().account_id == acct
    assert fake.calls["oauth2/token"] == 1
    assert fake.calls["users/get_current_account"] == 2
    fake.fail("users/get_current_account", "expired_token")
    assert dbx.users_get_current_account().account_id == acct
    assert fake.calls["oauth2/token"] == 2


def test_refresh_failures(fake: FakeDropbox, acct: str) -> None:
    fake.add_app("key", "secret")
    refresh = fake.refresh_token(acct, "key")

    def me(refresh_token: str, **kw: str) -> object:
        dbx = client(fake, oauth2_refresh_token=refresh_token, app_key="key", **kw)
        return dbx.users_get_current_account()

    with pytest.raises(BadInputError):  # 400 invalid_client
        me(refresh, app_secret="nope")
    with pytest.raises(BadInputError):  # 400 invalid_request: this token needs the app secret
        me(refresh)
    with pytest.raises(AuthError) as err:  # 400 invalid_grant, which the SDK maps to a 401
        me("bogus", app_secret="secret")
    assert err.value.error.is_invalid_access_token()
    assert me(refresh, app_secret="secret")
    assert me(fake.refresh_token(acct, "key", pkce=True))


def test_access_token_only_client_gets_auth_error(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.expire_access_tokens()
    with pytest.raises(AuthError) as err:
        dbx.users_get_current_account()
    assert err.value.error.is_expired_access_token()
    with pytest.raises(AuthError) as err:
        client(fake, fake.access_token(acct, expires_in=0)).files_list_folder("")
    assert err.value.error.is_expired_access_token()
    with pytest.raises(AuthError) as err:
        client(fake, "sl.unknown").files_list_folder("")
    assert err.value.error.is_invalid_access_token()
    assert client(fake, fake.access_token(acct)).users_get_current_account()


def test_pkce_flow_gives_a_working_refresh_token(fake: FakeDropbox, acct: str) -> None:
    fake.add_app("key", "secret")
    flow = DropboxOAuth2FlowNoRedirect("key", use_pkce=True, token_access_type="offline")
    flow.requests_session = session(fake.ca_path)
    url = flow.start()
    assert url.startswith(f"https://{fake.host}/oauth2/authorize?")
    code = fake.approve(url, acct)
    result = flow.finish(code)
    assert result.account_id == acct and result.refresh_token and result.expires_at
    dbx = client(fake, oauth2_refresh_token=result.refresh_token, app_key="key")
    assert dbx.users_get_current_account().account_id == acct
    with pytest.raises(requests.HTTPError):
        flow.finish(code)  # a code works once
    other = DropboxOAuth2FlowNoRedirect("key", use_pkce=True, token_access_type="offline")
    other.requests_session = flow.requests_session
    code = fake.approve(other.start(), acct)
    with pytest.raises(requests.HTTPError):
        flow.finish(code)  # wrong code_verifier
    fake.authorize_as = acct
    third = DropboxOAuth2FlowNoRedirect("key", use_pkce=True, token_access_type="offline")
    third.requests_session = flow.requests_session
    page = third.requests_session.get(third.start())
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/plain")
    assert third.finish(page.text.strip()).account_id == acct


# -- longpoll ----------------------------------------------------------------------------------


def test_longpoll_wakes_promptly_on_a_change(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    fake.mkdir(acct, "/b")
    cursor = dbx.files_list_folder_get_latest_cursor("/b", recursive=True).cursor
    timer = threading.Timer(0.2, lambda: fake.put(acct, "/b/p.md", b"x"))
    started = time.monotonic()
    timer.start()
    result = dbx.files_list_folder_longpoll(cursor, timeout=30)
    assert result.changes and time.monotonic() - started < 1
    timer.join()


def test_longpoll_times_out_and_ignores_changes_elsewhere(
    fake: FakeDropbox, acct: str, dbx: Dropbox
) -> None:
    fake.mkdir(acct, "/b")
    fake.longpoll_time_scale = 0.01
    fake.longpoll_backoff = 5
    cursor = dbx.files_list_folder_get_latest_cursor("/b").cursor
    timer = threading.Timer(0.1, lambda: fake.put(acct, "/elsewhere.md", b"x"))
    timer.start()
    started = time.monotonic()
    result = dbx.files_list_folder_longpoll(cursor, timeout=30)
    elapsed = time.monotonic() - started
    assert (result.changes, result.backoff) == (False, 5) and 0.25 < elapsed < 1.5
    timer.join()


# -- observation, latency, TLS and lifecycle -------------------------------------------------


def test_latency_calls_and_downloads(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    post = fake.put(acct, "/p.md", b"x")
    fake.latency = {"files/get_metadata": 0.3}
    started = time.monotonic()
    dbx.files_get_metadata("/p.md")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    dbx.files_download("/P.md")
    dbx.files_download(post["id"])
    assert time.monotonic() - started < 0.3
    assert fake.calls == {"files/get_metadata": 1, "files/download": 2}
    assert fake.downloads == [(acct, "/p.md", post["rev"])] * 2


def test_reset_forgets_tokens_cursors_and_files(fake: FakeDropbox, acct: str, dbx: Dropbox) -> None:
    cursor = dbx.files_list_folder("").cursor
    fake.reset()
    with pytest.raises(AuthError):
        dbx.files_list_folder("")
    again = fake.add_account()
    other = client(fake, fake.access_token(again))
    with pytest.raises(ApiError) as err:
        other.files_list_folder_continue(cursor)
    assert err.value.error.is_reset()
    assert fake.calls == {"files/list_folder": 1, "files/list_folder/continue": 1}


def test_ids_and_revs(fake: FakeDropbox, acct: str) -> None:
    first = fake.put(acct, "/a.md", b"1")
    fake.delete(acct, "/a.md")
    second = fake.put(acct, "/a.md", b"1")
    again = fake.put(acct, "/a.md", b"1")
    assert first["id"] != second["id"] == again["id"]
    revs = {first["rev"], second["rev"], again["rev"]}
    assert len(revs) == 3 and all(len(r) >= 9 and int(r, 16) >= 0 for r in revs)
    assert first["id"].startswith("id:") and len(first["id"]) == 25
    assert fake.tree(acct, "/") == {"a.md": b"1"}
    fake.put(acct, "/B/c/D.md", b"d")
    assert fake.tree(acct, "/b") == {"c/d.md": b"d"}
    assert fake.folders(acct, "") == {"b", "b/c"}
    with pytest.raises(FileExistsError):
        fake.move(acct, "/a.md", "/b/c/d.md")


def test_the_sdk_and_child_processes_are_pointed_at_this_fake(fake: FakeDropbox) -> None:
    assert dropbox.session.API_HOST == dropbox.session.API_CONTENT_HOST == fake.host
    assert dropbox.session.API_NOTIFICATION_HOST == dropbox.session.WEB_HOST == fake.host
    assert os.environ["DROPBOX_API_NOTIFY_HOST"] == fake.host


def test_tls_needs_the_fakes_ca(fake: FakeDropbox, acct: str) -> None:
    token = fake.access_token(acct)
    dbx = dropbox.Dropbox(token, session=session(certifi.where()), max_retries_on_error=0)
    with pytest.raises(requests.exceptions.SSLError):
        dbx.users_get_current_account()
    assert dropbox.session.SSLError is requests.exceptions.SSLError


def test_stop_does_not_hang_on_an_open_longpoll() -> None:
    fake = FakeDropbox().start()
    acct = fake.add_account()
    fake.mkdir(acct, "/b")
    s = session(fake.ca_path)
    base = f"https://{fake.host}/2/files/list_folder"
    headers = {"Authorization": "Bearer " + fake.access_token(acct)}
    cursor = s.post(base, json={"path": "/b"}, headers=headers).json()["cursor"]
    outcome: list[object] = []

    def poll() -> None:
        try:
            outcome.append(
                s.post(base + "/longpoll", json={"cursor": cursor, "timeout": 480}).json()
            )
        except requests.RequestException as exc:
            outcome.append(exc)

    refused = s.post(base + "/longpoll", json={"cursor": cursor}, headers=headers)
    assert refused.status_code == 400  # longpoll takes no token; the SDK sends none
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.stop()
    poller.join(5)
    assert time.monotonic() - started < 3 and outcome and not poller.is_alive()
