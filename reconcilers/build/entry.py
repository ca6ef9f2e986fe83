"""Turn one post file's bytes into an :class:`EntryDraft`.

Building is a pure function of ``(path, bytes)`` so that the same file always
builds the same entry, and so that a failure is a property of the content: it
is reported as a :class:`BuildError` (with a line when one is known) and never
retried. No other exception may escape, whatever the bytes are, because one bad
file must not take down the reconciliation of a whole blog.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconcilers.errors import BuildError

from .dates import date_from_field, date_from_path
from .metadata import Field, parse_metadata, stringify

POST_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".txt", ".html"})

_BOM = b"\xef\xbb\xbf"
_TRUE_WORDS = frozenset({"yes", "true", "1", "on"})
# ``[^<>]*`` (not ``[^>]*``) keeps every failed match short, hence linear scans.
_HTML_SCAN = re.compile(
    r"<!--|<(?P<raw>script|style)(?=[\s/>])|<h(?P<level>[1-6])(?=[\s/>])[^<>]*>", re.IGNORECASE
)
_HTML_TAG = re.compile(r"<[^<>]*>")

# Raw HTML is allowed because Blot-style posts mix it into Markdown freely.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table")


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """What a post says about itself, before the blog assigns it an identity.

    ``date`` is ``None`` when neither metadata nor path dates the post, so that
    the caller can fall back to the file's creation time, which it alone knows.
    ``metadata`` is a sorted tuple of pairs so that the draft stays hashable and
    two builds of the same file compare equal.
    """

    path: str
    title: str
    html: str
    date: datetime | None
    tags: tuple[str, ...]
    draft: bool
    metadata: tuple[tuple[str, str], ...]


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def build_entry(path: str, data: bytes) -> EntryDraft:
    """Build the entry for the post at ``path`` (a key) from its content."""
    name = _file_name(path)
    suffix = _suffix(name)
    if suffix not in POST_SUFFIXES:
        expected = ", ".join(sorted(POST_SUFFIXES))
        raise BuildError(f"not a post (expected a name ending in {expected})", path=path)
    text = _decode(path, data)
    parsed = parse_metadata(text, path)
    fields = parsed.fields

    if suffix == ".html":
        html = parsed.body
        heading = _html_heading(parsed.body)
    else:
        html, heading = _render_markdown(parsed.body, path)

    title = _field_text(fields, "title") or heading or name[: name.rfind(".")] or name
    date_field = fields.get("date")
    date = date_from_field(date_field, path) if date_field is not None else None
    if date is None:
        date = date_from_path(path)
    folders = path.split("/")[:-1]
    draft_field = fields.get("draft")
    draft = any(folder.lower() == "drafts" for folder in folders) or (
        draft_field is not None and draft_field.value.strip().lower() in _TRUE_WORDS
    )
    return EntryDraft(
        path=path,
        title=title,
        html=html,
        date=date,
        tags=_tags(fields.get("tags"), path),
        draft=draft,
        metadata=tuple(sorted((key, field.value) for key, field in fields.items())),
    )


def _decode(path: str, data: bytes) -> str:
    """Decode strictly and normalise line breaks the way Markdown itself does."""
    skipped = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        prefix = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = prefix.count(b"\n") + 1
        raise BuildError(
            f"file is not UTF-8 text (invalid byte at offset {offset})", path=path, line=line
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _field_text(fields: dict[str, Field], key: str) -> str:
    field = fields.get(key)
    return field.value.strip() if field is not None else ""


def _tags(field: Field | None, path: str) -> tuple[str, ...]:
    if field is None:
        return ()
    native = field.native
    # A YAML list already says where each tag ends, so its items are not split
    # again at commas; ``field.value`` for a list is only its display form.
    if isinstance(native, list | tuple):
        candidates = [stringify(item, path, field.line) for item in native]
    else:
        candidates = field.value.split(",")
    seen: dict[str, None] = {}
    for candidate in candidates:
        tag = candidate.strip()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


def _render_markdown(body: str, path: str) -> tuple[str, str]:
    """Render the body and find its first heading from a single parse."""
    try:
        tokens = _MARKDOWN.parse(body)
        html = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    except Exception as exc:  # a third-party boundary: keep the no-escape promise
        raise BuildError(f"Markdown could not be rendered: {exc}", path=path) from None
    for index, token in enumerate(tokens[:-1]):
        if token.type == "heading_open":
            text = _inline_text(tokens[index + 1])
            if text:
                return html, text
    return html, ""


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return " ".join("".join(parts).split())


def _html_heading(body: str) -> str:
    """Text of the first non-empty ``<h1>``…``<h6>``, tags stripped, entities decoded.

    A small scanner rather than ``html.parser``: the stdlib parser goes quadratic
    on runs of unclosed ``<`` (minutes for a few hundred KB), and every step here
    is a bounded search, so a hostile file costs linear time. Comments, scripts
    and styles are skipped so that a heading inside them is not taken.
    """
    position = 0
    while (found := _HTML_SCAN.search(body, position)) is not None:
        if found.group(0) == "<!--":
            end = body.find("-->", found.end())
            position = len(body) if end < 0 else end + 3
            continue
        if found.group("raw") is not None:
            closer = re.compile(rf"</{found.group('raw')}", re.IGNORECASE)
            closing = closer.search(body, found.end())
            position = len(body) if closing is None else closing.end()
            continue
        closing_heading = re.compile(rf"</h{found.group('level')}\s*>", re.IGNORECASE)
        closing = closing_heading.search(body, found.end())
        inner = body[found.end() : len(body) if closing is None else closing.start()]
        text = " ".join(html.unescape(_HTML_TAG.sub("", _without_comments(inner))).split())
        if text:
            return text
        position = len(body) if closing is None else closing.end()
    return ""


def _without_comments(text: str) -> str:
    kept: list[str] = []
    position = 0
    while (start := text.find("<!--", position)) >= 0:
        kept.append(text[position:start])
        end = text.find("-->", start + 4)
        position = len(text) if end < 0 else end + 3
    kept.append(text[position:])
    return "".join(kept)
