"""Dropbox blogs end to end: the real SDK against the local HTTPS fake.

Every scenario ends byte-identical to the fake's folder with a second pass
that does nothing (``assert_converged``); download counts prove that moves,
renames and resets fetch nothing again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from dbx_blog import ROOT, DropboxBlog

from reconcilers.core.machine import State
from reconcilers.errors import SourceGone

POST = b"Title: Hello\nDate: 2026-01-02\n\nHello *world*.\n"


def _populate(dbx: DropboxBlog) -> None:
    dbx.put("Hello.md", POST)
    dbx.put("drafts/Second Post.md", b"Title: Second\n\nBody two.\n")
    dbx.put("drafts/deep/er/notes.txt", b"plain notes\n")
    dbx.put("img/Logo.png", bytes(range(256)) * 40)
    dbx.put("empty.txt", b"")


def test_first_pass_mirrors_the_folder_with_lower_case_keys_and_builds_posts(
    dbx: DropboxBlog,
) -> None:
    _populate(dbx)
    report = dbx.reconcile()
    assert report.actions["set"] == 5 and report.errors == 0
    assert (dbx.folder / "drafts" / "second post.md").read_bytes().startswith(b"Title: Second")
    assert dbx.downloads() == 5
    titles = {e.path: e.title for e in dbx.store.entries("b")}
    assert titles["hello.md"] == "Hello" and titles["drafts/second post.md"] == "Second"
    remote = dbx.store.load_remote("b")
    assert remote["drafts/second post.md"].display == "drafts/Second Post.md"
    assert remote["hello.md"].id and remote["hello.md"].rev
    dbx.assert_converged()


def test_mtime_comes_from_client_modified(dbx: DropboxBlog) -> None:
    meta = dbx.put("a.txt", b"x")
    dbx.reconcile()
    stamp = time.strptime(meta["client_modified"], "%Y-%m-%dT%H:%M:%SZ")
    expected = int(time.mktime(stamp) - time.timezone)  # the stamp is UTC
    assert int((dbx.folder / "a.txt").stat().st_mtime) == expected


def test_edits_creates_and_deletes_download_only_what_changed(dbx: DropboxBlog) -> None:
    _populate(dbx)
    dbx.reconcile()
    before = dbx.downloads()
    dbx.put("Hello.md", POST + b"More.\n")
    dbx.put("new.md", b"Title: New\n\nnew\n")
    dbx.delete("empty.txt")
    dbx.delete("drafts/deep")
    report = dbx.reconcile()
    # Drops: empty.txt, and drafts/deep with its folder er and er/notes.txt.
    assert report.actions == {"set": 2, "move": 0, "drop": 4}
    assert dbx.downloads() - before == 2
    assert not (dbx.folder / "drafts" / "deep").exists()
    dbx.assert_converged()


def test_moves_and_folder_renames_download_nothing_and_keep_inodes_and_entries(
    dbx: DropboxBlog,
) -> None:
    _populate(dbx)
    dbx.reconcile()
    ids = {e.path: e.id for e in dbx.store.entries("b")}
    inode = (dbx.folder / "drafts" / "second post.md").stat().st_ino
    before = dbx.downloads()
    dbx.move("drafts", "Published")
    dbx.move("Hello.md", "Published/Hello again.md")
    report = dbx.reconcile()
    assert dbx.downloads() == before, "a move downloaded the file again"
    assert report.actions["set"] == 0 and report.actions["move"] == 2
    assert (dbx.folder / "published" / "second post.md").stat().st_ino == inode
    after = {e.path: e.id for e in dbx.store.entries("b") if not e.deleted}
    assert after["published/second post.md"] == ids["drafts/second post.md"]
    assert after["published/hello again.md"] == ids["hello.md"]
    dbx.assert_converged()


def test_a_file_replaced_by_a_new_file_at_the_same_name_is_downloaded(dbx: DropboxBlog) -> None:
    dbx.put("a.md", b"one\n")
    dbx.reconcile()
    dbx.delete("a.md")
    dbx.put("a.md", b"two\n")
    dbx.reconcile()
    assert (dbx.folder / "a.md").read_bytes() == b"two\n"
    dbx.assert_converged()


def test_the_blog_folder_renamed_in_dropbox_keeps_working_without_downloads(
    dbx: DropboxBlog,
) -> None:
    _populate(dbx)
    dbx.reconcile()
    before = dbx.downloads()
    dbx.fake.move(dbx.account, ROOT, "/Archive/Blog 2026")
    dbx.root = "/Archive/Blog 2026"
    report = dbx.reconcile()
    assert dbx.downloads() == before and report.actions == {"set": 0, "move": 0, "drop": 0}
    dbx.put("after the move.md", b"Title: After\n\nx\n")
    dbx.reconcile()
    assert (dbx.folder / "after the move.md").exists()
    dbx.assert_converged()


def test_a_deleted_blog_folder_is_a_blog_error_that_drops_nothing(dbx: DropboxBlog) -> None:
    _populate(dbx)
    dbx.reconcile()
    dbx.fake.delete(dbx.account, ROOT)
    with pytest.raises(SourceGone, match="the Dropbox folder of blog b no longer exists"):
        dbx.reconcile()
    blog = dbx.store.get_blog("b")
    assert blog.status == "error" and "no longer exists" in (blog.status_message or "")
    assert (dbx.folder / "hello.md").read_bytes() == POST


def test_a_case_only_rename_changes_no_key_and_downloads_nothing(dbx: DropboxBlog) -> None:
    dbx.put("Posts/Hello.md", POST)
    dbx.reconcile()
    before = dbx.downloads()
    dbx.move("Posts/Hello.md", "Posts/HELLO.md")
    dbx.reconcile()
    dbx.reconcile(full=True)  # continue may not report it; a full listing does
    assert dbx.downloads() == before
    assert dbx.store.load_remote("b")["posts/hello.md"].display == "Posts/HELLO.md"
    dbx.assert_converged()


def test_a_reset_cursor_relists_without_downloading_or_rewriting(dbx: DropboxBlog) -> None:
    _populate(dbx)
    dbx.reconcile()
    stamps = {p: p.stat().st_mtime_ns for p in dbx.folder.rglob("*")}
    before = dbx.downloads()
    dbx.fake.reset_cursors(dbx.account)
    dbx.put("after reset.txt", b"new\n")
    dbx.reconcile()
    assert dbx.downloads() - before == 1
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert dbx.fake.calls["files/list_folder"] >= 2
    dbx.assert_converged()


def test_a_reset_in_the_middle_of_paging_still_converges(dbx: DropboxBlog) -> None:
    for n in range(12):
        dbx.put(f"p{n}.txt", f"{n}\n".encode())
    dbx.fake.page_size = 5
    dbx.reconcile()
    for n in range(12):
        dbx.put(f"p{n}.txt", f"{n} edited\n".encode())
    dbx.put("q/new.txt", b"q\n")
    dbx.fake.fail("files/list_folder/continue", "reset", times=1)
    before = dbx.downloads()
    dbx.reconcile()
    assert dbx.downloads() - before == 13
    dbx.assert_converged()


def test_paging_saves_each_page_with_its_cursor(dbx: DropboxBlog) -> None:
    for n in range(9):
        dbx.put(f"p{n}.txt", b"x")
    dbx.fake.page_size = 4
    dbx.reconcile()
    cursors = []
    real = dbx.store.save_observation

    def spy(blog_id, observation):  # type: ignore[no-untyped-def]
        cursors.append(observation.cursor)
        real(blog_id, observation)

    dbx.store.save_observation = spy  # type: ignore[method-assign]
    for n in range(9):
        dbx.put(f"p{n}.txt", b"y")
    dbx.reconcile()
    assert len(cursors) >= 3 and len(set(cursors)) == len(cursors)
    dbx.assert_converged()


def test_a_truncated_download_is_retried_and_never_installed_partially(
    dbx: DropboxBlog,
) -> None:
    dbx.put("big.bin", b"0123456789" * 50_000)
    dbx.fake.fail("files/download", "truncate", times=1)
    report = dbx.reconcile()
    assert report.errors == 0
    assert (dbx.folder / "big.bin").read_bytes() == b"0123456789" * 50_000
    assert dbx.fake.calls["files/download"] == 2
    dbx.assert_converged()


def test_corrupt_bytes_are_refused_then_fetched_again_by_the_next_pass(dbx: DropboxBlog) -> None:
    dbx.put("a.txt", b"good bytes\n")
    dbx.fake.fail("files/download", "corrupt", times=1)
    report = dbx.reconcile()
    assert report.errors == 1 and not (dbx.folder / "a.txt").exists()
    assert "hash mismatch" in report.failures[0][1]
    assert dbx.store.state_of("b", "a.txt") is State.FAILED
    time.sleep(1.1)  # the first retry of a failed file waits 1 s
    dbx.reconcile()
    assert (dbx.folder / "a.txt").read_bytes() == b"good bytes\n"
    dbx.assert_converged()


def test_server_errors_retry_the_file_with_backoff(dbx: DropboxBlog) -> None:
    dbx.put("a.txt", b"a\n")
    dbx.put("b.txt", b"b\n")
    dbx.fake.fail("files/download", "server_error", times=2)
    report = dbx.reconcile()
    assert report.errors == 0
    dbx.assert_converged()


def test_a_429_holds_the_blog_for_retry_after(dbx: DropboxBlog) -> None:
    for n in range(4):
        dbx.put(f"{n}.txt", b"n\n")
    dbx.fake.fail("files/download", "rate_limit", times=1, retry_after=1)
    started = time.monotonic()
    report = dbx.reconcile()
    assert time.monotonic() - started >= 1.0
    assert report.errors == 0
    dbx.assert_converged()


def test_downloads_run_eight_at_a_time(dbx: DropboxBlog) -> None:
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow() -> None:  # runs inside the fake, while that download is being served
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1

    for n in range(20):
        dbx.put(f"{n}.txt", b"n\n")
        dbx.fake.on_download(f"/blogs/my blog/{n}.txt", slow)
    dbx.reconcile()
    assert peak[0] == dbx.settings.dropbox_concurrency == 8
    dbx.assert_converged()


def test_a_file_edited_while_it_downloads_ends_at_its_newest_revision(dbx: DropboxBlog) -> None:
    dbx.put("post.md", b"Title: One\n\nfirst\n")
    dbx.fake.on_download("/blogs/my blog/post.md", lambda: dbx.put("post.md", b"Title: Two\n\n2\n"))
    dbx.reconcile()
    assert (dbx.folder / "post.md").read_bytes() == b"Title: Two\n\n2\n"
    assert [e.title for e in dbx.store.entries("b")] == ["Two"]
    dbx.assert_converged()


def test_an_expired_access_token_is_refreshed_transparently(dbx: DropboxBlog) -> None:
    dbx.put("a.txt", b"a\n")
    dbx.reconcile()
    refreshes = dbx.fake.calls["oauth2/token"]
    dbx.fake.expire_access_tokens(dbx.account)
    dbx.put("b.txt", b"b\n")
    dbx.reconcile()
    assert dbx.fake.calls["oauth2/token"] == refreshes + 1
    dbx.assert_converged()


def test_files_over_the_size_limit_are_rejected_with_a_clear_message(
    dbx: DropboxBlog, tmp_path: Path
) -> None:
    dbx.reconciler.settings = dbx.settings.model_copy(update={"dropbox_max_file_size": 1000})
    dbx.put("huge.bin", b"x" * 2000)
    dbx.put("small.md", b"Title: S\n\ns\n")
    report = dbx.reconcile()
    assert dbx.store.state_of("b", "huge.bin") is State.REJECTED
    assert not (dbx.folder / "huge.bin").exists() and (dbx.folder / "small.md").exists()
    assert report.errors == 1
    assert report.failures[0][1] == "file is 2000 bytes, over the 1000 bytes limit for Dropbox"


def test_a_pass_with_nothing_new_is_one_continue_round_trip(
    dbx: DropboxBlog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(dbx)
    dbx.reconcile()
    before = Counter(dbx.fake.calls)
    loads = []
    real = dbx.store.load_remote
    monkeypatch.setattr(dbx.store, "load_remote", lambda blog: loads.append(blog) or real(blog))
    dbx.reconcile()
    assert Counter(dbx.fake.calls) - before == Counter({"files/list_folder/continue": 1})
    assert loads == [], "a settled no-op pass read the whole stored tree"
