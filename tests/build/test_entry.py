"""Building entries: posts, decoding, rendering, title, date, tags, drafts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcilers.build import POST_SUFFIXES, EntryDraft, build_entry, is_post
from reconcilers.errors import BuildError


def build(text: str, path: str = "post.md") -> EntryDraft:
    return build_entry(path, text.encode("utf-8"))


def failure(data: bytes, path: str = "post.md") -> BuildError:
    with pytest.raises(BuildError) as info:
        build_entry(path, data)
    assert info.value.path == path
    return info.value


# --- which files are posts ----------------------------------------------------


def test_post_suffixes_are_exactly_the_four_kinds() -> None:
    assert frozenset({".md", ".markdown", ".txt", ".html"}) == POST_SUFFIXES


@pytest.mark.parametrize(
    "path", ["a.md", "dir/b.markdown", "c.txt", "d/e/f.html", "UPPER.MD", "Mixed.Html"]
)
def test_post_suffixes_match_case_insensitively(path: str) -> None:
    assert is_post(path)


@pytest.mark.parametrize(
    "path", ["a.jpg", "notes.md.bak", "md", "dir.md/readme", "a.htm", "archive.tar.gz"]
)
def test_other_files_are_not_posts(path: str) -> None:
    assert not is_post(path)


def test_building_a_non_post_is_a_build_error() -> None:
    assert failure(b"x", "image.png").line is None


# --- decoding -----------------------------------------------------------------


def test_invalid_utf8_reports_offset_and_line() -> None:
    error = failure(b"Title: x\n\nab\xffcd")
    assert error.message == "file is not UTF-8 text (invalid byte at offset 12)"
    assert error.line == 3


def test_invalid_utf8_offset_counts_the_bom() -> None:
    error = failure(b"\xef\xbb\xbf\x80")
    assert error.message == "file is not UTF-8 text (invalid byte at offset 3)"
    assert error.line == 1


def test_latin1_file_is_rejected() -> None:
    assert "not UTF-8" in failure("café".encode("latin-1")).message


def test_leading_bom_is_stripped_before_metadata_detection() -> None:
    entry = build_entry("p.md", b"\xef\xbb\xbfTitle: With BOM\n\nBody")
    assert entry.title == "With BOM"
    assert "\ufeff" not in entry.html


def test_leading_bom_is_stripped_before_front_matter_detection() -> None:
    assert build_entry("p.md", b"\xef\xbb\xbf---\ntitle: Y\n---\n").title == "Y"


# --- rendering ----------------------------------------------------------------


def test_markdown_body_is_rendered_to_html() -> None:
    assert build("Some *emphasis*.").html == "<p>Some <em>emphasis</em>.</p>\n"


def test_markdown_passes_raw_html_through() -> None:
    assert '<div class="x">' in build('<div class="x">\nhi\n</div>').html


def test_markdown_tables_are_rendered() -> None:
    assert "<table>" in build("| a | b |\n|---|---|\n| 1 | 2 |").html


@pytest.mark.parametrize("suffix", [".md", ".markdown", ".txt"])
def test_text_kinds_render_as_markdown(suffix: str) -> None:
    assert build("**bold**", "post" + suffix).html == "<p><strong>bold</strong></p>\n"


def test_html_body_is_used_as_is() -> None:
    body = "<p>Raw *not markdown*</p>\n<script>x()</script>"
    assert build(body, "page.html").html == body


# --- title --------------------------------------------------------------------


def test_title_comes_from_metadata_first() -> None:
    assert build("Title: Meta\n\n# Heading").title == "Meta"


def test_title_falls_back_to_first_markdown_heading() -> None:
    assert build("Intro text\n\n## Second *level* `code`\n\n# Later").title == ("Second level code")


def test_setext_heading_counts_as_a_heading() -> None:
    assert build("Big Title\n=========\n\ntext").title == "Big Title"


def test_empty_metadata_title_falls_back_to_heading() -> None:
    assert build("Title:\n\n# Real").title == "Real"


def test_markdown_heading_html_tags_are_dropped_from_title() -> None:
    assert build("# Hello <em>world</em> &amp; more").title == "Hello world & more"


def test_title_falls_back_to_html_heading_without_tags() -> None:
    html = "<p>intro</p>\n<h3 class='t'>Hello <b>bold</b> &amp; <i>all</i></h3><h1>Later</h1>"
    assert build(html, "page.html").title == "Hello bold & all"


def test_html_headings_in_comments_and_scripts_are_skipped() -> None:
    html = "<!-- <h1>Old</h1> --><script>'<h1>js</h1>'</script><H2>Real<!-- x --></H2>"
    assert build(html, "page.html").title == "Real"


def test_empty_html_heading_is_skipped() -> None:
    assert build("<h1> <img src=x> </h1><h2>Second</h2>", "page.html").title == "Second"


def test_unclosed_html_heading_still_gives_a_title() -> None:
    assert build("<h1>Open ended", "page.html").title == "Open ended"


def test_title_falls_back_to_file_stem_kept_as_is() -> None:
    assert build("just text", "posts/my_first-post.md").title == "my_first-post"


def test_title_stem_strips_only_the_last_suffix() -> None:
    assert build("text", "a/notes.v2.markdown").title == "notes.v2"


def test_heading_inside_html_block_is_not_a_markdown_heading() -> None:
    assert build("<h1>Raw</h1>\n\ntext", "p.md").title == "p"


# --- date ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:20:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T12:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01 10:20", datetime(2024, 5, 1, 10, 20, tzinfo=UTC)),
        ("2024/05/01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024/5/1 9:05", datetime(2024, 5, 1, 9, 5, tzinfo=UTC)),
    ],
)
def test_metadata_date_formats_parse_to_utc(value: str, expected: datetime) -> None:
    date = build(f"Date: {value}\n\nBody").date
    assert date == expected
    assert date is not None and date.tzinfo == UTC


def test_metadata_date_wins_over_path_date() -> None:
    assert build("Date: 2020-01-02\n\nx", "2024-05-01-x.md").date == datetime(
        2020, 1, 2, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["tomorrow", "2024-13-01", "2024/02/30", "01/05/2024"])
def test_unparseable_metadata_date_is_an_error_on_its_line(value: str) -> None:
    error = failure(f"Title: x\nDate: {value}\n\nBody".encode())
    assert error.message == f"Invalid date on line 2: {value}"
    assert error.line == 2


def test_unparseable_yaml_date_reports_the_key_line() -> None:
    error = failure(b"---\ntitle: x\ndate: someday\n---\n")
    assert error.message == "Invalid date on line 3: someday"
    assert error.line == 3


def test_empty_metadata_date_means_no_date() -> None:
    assert build("Date:\n\nBody", "2024-05-01-x.md").date == datetime(2024, 5, 1, tzinfo=UTC)


def test_date_from_folder_sequence_in_path() -> None:
    entry = build("x", "posts/2024/05/01/hello.md")
    assert entry.date == datetime(2024, 5, 1, tzinfo=UTC)


def test_date_from_file_name_prefix() -> None:
    assert build("x", "2024-05-01-hello.md").date == datetime(2024, 5, 1, tzinfo=UTC)


def test_date_from_folder_name_prefix() -> None:
    assert build("x", "2023-12-31-trip/notes.md").date == datetime(2023, 12, 31, tzinfo=UTC)


def test_path_date_nearest_the_file_wins() -> None:
    assert build("x", "2020/01/01/2024-05-01-x.md").date == datetime(2024, 5, 1, tzinfo=UTC)


def test_invalid_path_date_is_ignored() -> None:
    assert build("x", "2024-02-30-hello.md").date is None
    assert build("x", "posts/2024/13/01/hello.md").date is None


def test_invalid_path_date_falls_through_to_a_valid_one() -> None:
    assert build("x", "2024/05/01/2024-02-30-x.md").date == datetime(2024, 5, 1, tzinfo=UTC)


def test_date_sequence_must_end_in_a_folder() -> None:
    assert build("x", "2024/05/01.md").date is None


def test_no_date_anywhere_is_none() -> None:
    assert build("x", "posts/hello.md").date is None


# --- the draft value itself ---------------------------------------------------


def test_entry_is_frozen_and_hashable() -> None:
    entry = build("Title: T\nTags: a\n\nx")
    assert hash(entry) == hash(build("Title: T\nTags: a\n\nx"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.title = "other"  # type: ignore[misc]


def test_entry_keeps_the_path_it_was_built_from() -> None:
    assert build("x", "a/b/c.md").path == "a/b/c.md"


# --- nothing but BuildError escapes -------------------------------------------

_SUFFIXES = st.sampled_from(sorted(POST_SUFFIXES))
_META_LINES = st.lists(
    st.one_of(
        st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,5}: ?[^\n]{0,12}", fullmatch=True),
        st.sampled_from(["", "---", "...", "- a", "  b: [", "&a [*a]", "date: 2024-13-01"]),
        st.text(max_size=12),
    ),
    max_size=8,
)


def _only_build_errors(path: str, data: bytes) -> None:
    try:
        entry = build_entry(path, data)
    except BuildError as error:
        assert error.path == path
        return
    assert isinstance(entry, EntryDraft)
    assert entry.date is None or entry.date.tzinfo == UTC


@given(data=st.binary(max_size=300), suffix=_SUFFIXES)
def test_arbitrary_bytes_raise_nothing_but_build_error(data: bytes, suffix: str) -> None:
    _only_build_errors("p" + suffix, data)


@given(text=st.text(max_size=300), suffix=_SUFFIXES)
def test_arbitrary_text_raises_nothing_but_build_error(text: str, suffix: str) -> None:
    _only_build_errors("p" + suffix, text.encode("utf-8", errors="surrogatepass"))


@given(lines=_META_LINES, body=st.text(max_size=50), suffix=_SUFFIXES, yaml=st.booleans())
def test_metadata_shaped_text_raises_nothing_but_build_error(
    lines: list[str], body: str, suffix: str, yaml: bool
) -> None:
    head = "---\n" + "\n".join(lines) + "\n---\n" if yaml else "\n".join(lines) + "\n\n"
    _only_build_errors("p" + suffix, (head + body).encode("utf-8", errors="surrogatepass"))


@given(path=st.text(max_size=40), suffix=_SUFFIXES)
def test_arbitrary_paths_raise_nothing_but_build_error(path: str, suffix: str) -> None:
    _only_build_errors(path + suffix, b"Title: x\n\nbody")
