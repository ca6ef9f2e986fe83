"""The local-folder source: walk, hash cache, ignored names, symlinks, hostile names."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import pytest

from reconcilers.core.tree import Kind
from reconcilers.errors import SourceGone
from reconcilers.hashing import BLOCK_SIZE, content_hash
from reconcilers.sources.local import LocalSource


def test_content_hash_is_dropbox_block_hash() -> None:
    data = b"x" * (BLOCK_SIZE + 10)
    blocks = hashlib.sha256(data[:BLOCK_SIZE]).digest() + hashlib.sha256(data[BLOCK_SIZE:]).digest()
    assert content_hash(data) == hashlib.sha256(blocks).hexdigest()
    assert content_hash(b"") == hashlib.sha256(b"").hexdigest()


def test_listing_has_files_and_directories_including_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "b" / "post.md").write_text("hello")
    tree = LocalSource(tmp_path).listing({})
    assert {p: n.kind for p, n in tree.items()} == {
        "a": Kind.DIR,
        "a/b": Kind.DIR,
        "a/b/post.md": Kind.FILE,
        "empty": Kind.DIR,
    }
    node = tree["a/b/post.md"]
    assert node.content_hash == content_hash(b"hello") and node.size == 5
    assert node.mtime_ns == (tmp_path / "a/b/post.md").stat().st_mtime_ns


def test_unchanged_files_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one.md").write_text("1")
    (tmp_path / "two.md").write_text("2")
    source = LocalSource(tmp_path)
    first = source.listing({})
    reads: list[str] = []
    import reconcilers.sources.local as local

    real = local.hash_file
    monkeypatch.setattr(local, "hash_file", lambda p: reads.append(p) or real(p))
    (tmp_path / "two.md").write_text("22")
    second = source.listing(first)
    assert reads == [str(tmp_path / "two.md")]
    assert second["one.md"] is first["one.md"]
    [changes] = source.changes(None, first)
    assert [n.path for n in changes.upserts] == ["two.md"] and changes.deletes == ()


def test_default_ignored_names_are_reported_as_ignored(tmp_path: Path) -> None:
    for name in [".DS_Store", "Thumbs.db", "desktop.ini", ".dropbox", "Icon\r", "~$draft.docx"]:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dropbox.cache").mkdir()
    (tmp_path / ".dropbox.cache" / "blob").write_text("x")
    tree = LocalSource(tmp_path).listing({})
    assert tree and all(n.ignored for n in tree.values())
    assert "/.dropbox.cache/blob" not in tree


def test_symlinks_are_not_followed_out_of_the_source(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.md").write_text("real")
    os.symlink(outside / "secret", src / "leak")
    os.symlink(outside, src / "leakdir")
    os.symlink(src / "real.md", src / "alias.md")
    tree = LocalSource(src).listing({})
    assert tree["leak"].problem == "symlink points outside the source folder"
    assert tree["leakdir"].problem == "symlink points outside the source folder"
    assert tree["alias.md"].content_hash == content_hash(b"real")


def test_names_are_normalised_to_nfc_and_fetched_by_their_real_name(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café.md")
    (tmp_path / nfd).write_text("au lait")
    source = LocalSource(tmp_path)
    tree = source.listing({})
    assert list(tree) == ["café.md"]
    import io

    sink = io.BytesIO()
    source.fetch(tree["café.md"], sink)
    assert sink.getvalue() == b"au lait"


def test_a_missing_source_folder_is_a_blog_level_error(tmp_path: Path) -> None:
    with pytest.raises(SourceGone, match="does not exist"):
        LocalSource(tmp_path / "nope", blog_id="b").listing({})


def test_files_under_a_decomposed_directory_name_are_fetched(tmp_path: Path) -> None:
    folder = tmp_path / unicodedata.normalize("NFD", "résumé")
    folder.mkdir()
    (folder / "cv.md").write_text("cv")
    source = LocalSource(tmp_path)
    tree = source.listing({})
    assert sorted(tree) == ["résumé", "résumé/cv.md"]
    import io

    sink = io.BytesIO()
    source.fetch(tree["résumé/cv.md"], sink)
    assert sink.getvalue() == b"cv"
