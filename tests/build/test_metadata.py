"""Metadata rules: Blot-style ``Key: value`` lines and YAML front matter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconcilers.build import EntryDraft, build_entry
from reconcilers.build.metadata import parse_metadata
from reconcilers.errors import BuildError


def build(text: str, path: str = "post.md") -> EntryDraft:
    return build_entry(path, text.encode("utf-8"))


def failure(text: str, path: str = "post.md") -> BuildError:
    with pytest.raises(BuildError) as info:
        build(text, path)
    assert info.value.path == path
    return info.value


# --- Blot-style metadata ----------------------------------------------------


def test_blot_keys_are_lowercased_and_values_stripped() -> None:
    entry = build("TiTle:   Hello there  \nSUMMARY: short\n\nBody")
    assert entry.metadata == (("summary", "short"), ("title", "Hello there"))
    assert entry.title == "Hello there"


def test_blot_metadata_is_sorted_by_key() -> None:
    entry = build("Zeta: 1\nAlpha: 2\nMiddle key: 3\n\nBody")
    assert [key for key, _ in entry.metadata] == ["alpha", "middle key", "zeta"]


def test_blot_key_may_contain_spaces_dashes_and_underscores() -> None:
    entry = build("Published At: x\nsome-key: y\nsnake_key: z\n\nBody")
    assert dict(entry.metadata) == {"published at": "x", "some-key": "y", "snake_key": "z"}


def test_blot_value_containing_url_keeps_everything_after_first_colon() -> None:
    entry = build("Title: T\nLink: http://x.com\n\nBody")
    assert dict(entry.metadata)["link"] == "http://x.com"


def test_blot_first_line_with_colon_in_value_then_prose_is_an_error_on_line_2() -> None:
    error = failure("foo: bar: baz\nxyz")
    assert error.message == "Invalid metadata on line 2: expected 'Key: value'"
    assert error.line == 2


def test_blot_invalid_line_reports_its_own_line_number() -> None:
    error = failure("Title: a\nTags: b\nthis is prose\n\nBody")
    assert error.message == "Invalid metadata on line 3: expected 'Key: value'"
    assert error.line == 3


def test_single_key_value_line_is_metadata_with_empty_body() -> None:
    entry = build("Hello: world")
    assert entry.metadata == (("hello", "world"),)
    assert entry.html == ""


def test_key_value_first_line_followed_by_blank_line_is_metadata() -> None:
    entry = build("Hello: world\n\nThe body.")
    assert entry.metadata == (("hello", "world"),)
    assert entry.html == "<p>The body.</p>\n"


def test_body_starts_after_the_first_blank_line() -> None:
    parsed = parse_metadata("A: 1\nB: 2\n\nfirst\n\nsecond", "p.md")
    assert parsed.body == "first\n\nsecond"
    assert parsed.fields["b"].line == 2


def test_whitespace_only_line_ends_the_block() -> None:
    parsed = parse_metadata("A: 1\n   \nfirst", "p.md")
    assert parsed.body == "first"


def test_empty_value_is_allowed() -> None:
    entry = build("Title:\nTags: a\n\nBody")
    assert dict(entry.metadata) == {"title": "", "tags": "a"}


def test_url_first_line_is_not_metadata() -> None:
    entry = build("http://example.com\nmore text")
    assert entry.metadata == ()
    assert "http://example.com" in entry.html


def test_value_starting_with_double_slash_on_first_line_is_not_metadata() -> None:
    entry = build("http: //example.com\nmore text")
    assert entry.metadata == ()


def test_colon_without_following_space_is_not_metadata() -> None:
    entry = build("Note:nothing here\nmore text")
    assert entry.metadata == ()


def test_first_line_starting_with_non_letter_is_not_metadata() -> None:
    assert build("1st: place\nprose").metadata == ()
    assert build("  Title: indented\nprose").metadata == ()


def test_key_longer_than_41_characters_is_not_metadata() -> None:
    assert build("A" * 42 + ": value\nprose").metadata == ()
    assert build("A" * 41 + ": value").metadata == (("a" * 41, "value"),)


def test_file_without_metadata_is_all_body() -> None:
    parsed = parse_metadata("# Heading\n\nText", "p.md")
    assert parsed.fields == {}
    assert parsed.body == "# Heading\n\nText"


def test_later_duplicate_key_wins() -> None:
    assert dict(build("Title: one\ntitle: two\n\nx").metadata)["title"] == "two"


def test_crlf_line_endings_behave_like_lf() -> None:
    entry = build_entry("p.md", b"Title: Win\r\nTags: a\r\n\r\nBody\r\n")
    assert entry.title == "Win"
    assert entry.tags == ("a",)
    assert entry.html == "<p>Body</p>\n"


def test_blot_metadata_works_in_html_posts() -> None:
    entry = build_entry("p.html", b"Title: From meta\n\n<p>hi</p>")
    assert entry.title == "From meta"
    assert entry.html == "<p>hi</p>"


# --- YAML front matter --------------------------------------------------------


def test_yaml_front_matter_with_tags_list_and_draft_true() -> None:
    entry = build("---\ntitle: Hello\ntags: [one, 'two, three', one]\ndraft: true\n---\nBody")
    assert entry.title == "Hello"
    assert entry.tags == ("one", "two, three")
    assert entry.draft is True
    assert dict(entry.metadata)["draft"] == "true"
    assert entry.html == "<p>Body</p>\n"


def test_yaml_values_become_strings() -> None:
    entry = build(
        "---\nTitle: T\ncount: 3\nratio: 0.5\nlist: [a, b]\nempty:\n"
        "when: 2024-05-01\nat: 2024-05-01 10:00:00\n---\n"
    )
    assert dict(entry.metadata) == {
        "title": "T",
        "count": "3",
        "ratio": "0.5",
        "list": "a, b",
        "empty": "",
        "when": "2024-05-01",
        "at": "2024-05-01T10:00:00",
    }


def test_yaml_front_matter_may_close_with_dots() -> None:
    assert build("---\ntitle: Dots\n...\nBody").title == "Dots"


def test_empty_yaml_front_matter_means_no_metadata() -> None:
    entry = build("---\n---\nBody")
    assert entry.metadata == ()
    assert entry.html == "<p>Body</p>\n"


def test_invalid_yaml_reports_the_file_line() -> None:
    error = failure("---\ntitle: ok\nbad: [unclosed\nother: x\n---\nBody")
    assert error.message.startswith("Invalid YAML front matter on line ")
    assert error.line is not None and error.line >= 3
    assert error.message.startswith(f"Invalid YAML front matter on line {error.line}: ")


def test_invalid_yaml_line_counts_the_opening_delimiter() -> None:
    error = failure("---\ntitle: a\n  bad: indentation\n---\n")
    assert error.line == 3
    assert error.message.startswith("Invalid YAML front matter on line 3: ")


def test_yaml_impossible_timestamp_is_a_yaml_error_on_its_line() -> None:
    error = failure("---\ntitle: a\nwhen: 2024-13-01\n---\n")
    assert error.line == 3
    assert "month must be in 1..12" in error.message


def test_yaml_unsafe_tag_is_rejected() -> None:
    error = failure("---\nx: !!python/object:os.system echo\n---\n")
    assert error.message.startswith("Invalid YAML front matter on line 2: ")


def test_yaml_front_matter_that_is_a_list_is_rejected() -> None:
    error = failure("---\n- a\n- b\n---\nBody")
    assert "must be a mapping" in error.message
    assert error.line == 2


def test_yaml_front_matter_that_is_a_string_is_rejected() -> None:
    assert "must be a mapping" in failure("---\njust words\n---\nBody").message


def test_unclosed_yaml_front_matter_is_an_error_on_line_1() -> None:
    error = failure("---\ntitle: x\nBody")
    assert error.line == 1


def test_self_referencing_yaml_value_is_an_error_not_a_hang() -> None:
    assert failure("---\na: &a [*a]\n---\n").line == 2


def test_yaml_key_lines_are_remembered() -> None:
    parsed = parse_metadata("---\ntitle: a\n\nDate: 2024-01-01\n---\nbody", "p.md")
    assert parsed.fields["date"].line == 4
    assert parsed.body == "body"


def test_yaml_native_date_and_datetime_are_used_directly() -> None:
    assert build("---\ndate: 2024-05-01\n---\n").date == datetime(2024, 5, 1, tzinfo=UTC)
    aware = build("---\ndate: 2024-05-01 12:00:00+02:00\n---\n").date
    assert aware == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert aware is not None and aware.tzinfo == UTC


def test_yaml_boolean_yes_counts_as_draft() -> None:
    assert build("---\ndraft: yes\n---\n").draft is True
    assert build("---\ndraft: false\n---\n").draft is False


def test_yaml_tags_as_comma_separated_string_are_split() -> None:
    assert build("---\ntags: a, b ,, c\n---\n").tags == ("a", "b", "c")


def test_yaml_non_string_keys_are_stringified() -> None:
    assert dict(build("---\n1: one\n2024-01-02: day\n---\n").metadata) == {
        "1": "one",
        "2024-01-02": "day",
    }


# --- tags ---------------------------------------------------------------------


def test_tags_are_split_stripped_deduplicated_in_order() -> None:
    assert build("Tags: b, a ,, b, A,  \n\nx").tags == ("b", "a", "A")


def test_no_tags_key_means_no_tags() -> None:
    assert build("Title: t\n\nx").tags == ()


# --- draft --------------------------------------------------------------------


def test_drafts_folder_makes_a_draft() -> None:
    assert build("x", "blog/Drafts/post.md").draft is True


def test_file_named_drafts_is_not_a_drafts_folder() -> None:
    assert build("x", "blog/drafts.md").draft is False


@pytest.mark.parametrize("value", ["yes", "Yes", "TRUE", "1", "on"])
def test_draft_metadata_truthy_values(value: str) -> None:
    assert build(f"Draft: {value}\n\nx").draft is True


@pytest.mark.parametrize("value", ["no", "false", "0", "off", "", "maybe"])
def test_draft_metadata_other_values_are_not_drafts(value: str) -> None:
    assert build(f"Draft: {value}\n\nx").draft is False


def test_drafts_folder_wins_over_draft_no() -> None:
    assert build("Draft: no\n\nx", "drafts/p.md").draft is True
