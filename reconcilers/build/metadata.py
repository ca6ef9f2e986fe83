"""Split a post's text into metadata fields and a body.

Two formats are accepted because people bring posts from two worlds: YAML front
matter (static-site generators) and Blot-style ``Key: value`` lines. Detection
is deliberately strict and predictable: a file is either clearly one of them or
it has no metadata at all, and a half-written metadata block is reported with
its line number instead of being silently rendered as prose.

Every field remembers the line its key is on, so that a later complaint about a
value (an unparseable date, say) can point at the right line of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconcilers.errors import BuildError

# The first line of a Blot-style block must match this *and* its value must not
# start with ``//``: that is how ``http://example.com`` (or ``http: //x``) stays prose.
_META_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_\- ]{0,40}):(\s.*)?")
_FRONT_MATTER_OPEN = "---"
_FRONT_MATTER_CLOSE = frozenset({"---", "..."})

# A YAML document can alias one list into another many times over (or into
# itself); flattening such a value must stay bounded, so it gets a budget.
_MAX_DEPTH = 32
_MAX_PIECES = 10_000


@dataclass(frozen=True, slots=True)
class Field:
    """One metadata value, kept both as text and as YAML produced it.

    ``native`` lets tags keep a YAML list's items whole and lets a YAML date or
    boolean be used without a round trip through text; for Blot-style lines it
    is simply the text.
    """

    value: str
    line: int
    native: object


@dataclass(frozen=True, slots=True)
class ParsedText:
    fields: dict[str, Field]
    body: str
    # Where the metadata starts: the fallback line for errors about a field
    # whose own line could not be found.
    first_line: int


def parse_metadata(text: str, path: str) -> ParsedText:
    """Separate metadata from body; ``text`` must already use ``\\n`` line breaks."""
    lines = text.split("\n")
    if lines[0].rstrip() == _FRONT_MATTER_OPEN:
        return _parse_front_matter(lines, path)
    if _is_first_meta_line(lines[0]):
        return _parse_blot(lines, path)
    return ParsedText(fields={}, body=text, first_line=1)


def _is_first_meta_line(line: str) -> bool:
    match = _META_LINE.fullmatch(line)
    return match is not None and not (match.group(2) or "").strip().startswith("//")


def _parse_blot(lines: list[str], path: str) -> ParsedText:
    # Only the first line is tested for ``//``: it exists to decide whether the
    # file starts with metadata at all. Once inside the block a value such as a
    # protocol-relative URL is just a value.
    fields: dict[str, Field] = {}
    body_start = len(lines)
    for index, line in enumerate(lines):
        if not line.strip():
            body_start = index + 1
            break
        match = _META_LINE.fullmatch(line)
        if match is None:
            raise BuildError(
                f"Invalid metadata on line {index + 1}: expected 'Key: value'",
                path=path,
                line=index + 1,
            )
        key = match.group(1).strip().lower()
        value = (match.group(2) or "").strip()
        fields[key] = Field(value=value, line=index + 1, native=value)
    return ParsedText(fields=fields, body="\n".join(lines[body_start:]), first_line=1)


def _parse_front_matter(lines: list[str], path: str) -> ParsedText:
    close = next(
        (i for i in range(1, len(lines)) if lines[i].rstrip() in _FRONT_MATTER_CLOSE),
        None,
    )
    if close is None:
        raise BuildError(
            "YAML front matter opened on line 1 is never closed (expected a line '---' or '...')",
            path=path,
            line=1,
        )
    source = "\n".join(lines[1:close])
    body = "\n".join(lines[close + 1 :])
    root, data = _load_yaml(source, path)
    if data is None:
        return ParsedText(fields={}, body=body, first_line=1)
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        line = _line_of(source, root.start_mark.index) if root is not None else 1
        raise BuildError(
            f"YAML front matter on line {line} must be a mapping of keys to values, "
            f"not {_describe(data)}",
            path=path,
            line=line,
        )
    key_lines: dict[str, int] = {}
    for key_node, _ in root.value:
        if isinstance(key_node, ScalarNode):
            key_lines.setdefault(
                key_node.value.strip().lower(), _line_of(source, key_node.start_mark.index)
            )
    fields: dict[str, Field] = {}
    for raw_key, raw_value in data.items():
        key = stringify(raw_key, path, 1).strip().lower()
        line = key_lines.get(key, 1)
        fields[key] = Field(
            value=stringify(raw_value, path, line).strip(), line=line, native=raw_value
        )
    return ParsedText(fields=fields, body=body, first_line=1)


def _line_of(source: str, index: int) -> int:
    """Map a character index in the front matter to a line of the file.

    Counting ``\\n`` ourselves, rather than trusting the mark's line, matters
    because YAML also breaks lines at U+0085/U+2028/U+2029, which the file does not.
    """
    return source.count("\n", 0, index) + 2


def _load_yaml(source: str, path: str) -> tuple[Node | None, object]:
    # Composing and constructing separately keeps the node tree, which is how
    # each key's line is found. PyYAML raises more than YAMLError on hostile
    # input (ValueError for 2024-13-01, AttributeError for a bad !!timestamp,
    # RecursionError for deep nesting), so this boundary catches them all.
    try:
        loader = yaml.SafeLoader(source)
    except yaml.reader.ReaderError as exc:
        raise _yaml_error(source, exc.position, _reader_problem(exc), path) from None
    root: Node | None = None
    try:
        root = loader.get_single_node()
        data: object = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        raise _yaml_error(source, mark.index if mark else None, problem, path) from None
    except yaml.reader.ReaderError as exc:
        raise _yaml_error(source, exc.position, _reader_problem(exc), path) from None
    except RecursionError:
        raise _yaml_error(source, None, "nested too deeply", path) from None
    except Exception as exc:
        bad = _find_bad_scalar(root)
        problem = str(exc) if isinstance(exc, ValueError) else ""
        if bad is not None and not problem:
            problem = f"invalid value {bad.value!r} for tag {bad.tag}"
        index = bad.start_mark.index if bad is not None else None
        raise _yaml_error(source, index, problem or type(exc).__name__, path) from None
    finally:
        loader.dispose()
    return root, data


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    character: object = exc.character
    code = ord(character) if isinstance(character, str) and len(character) == 1 else character
    shown = f"#x{code:04x}" if isinstance(code, int) else repr(code)
    return f"unacceptable character {shown}: {exc.reason}"


def _yaml_error(source: str, index: int | None, problem: str, path: str) -> BuildError:
    line = 1 if index is None else _line_of(source, index)
    return BuildError(f"Invalid YAML front matter on line {line}: {problem}", path=path, line=line)


def _find_bad_scalar(root: Node | None) -> ScalarNode | None:
    """Find the scalar whose construction fails, to give an unmarked error a line."""
    seen: set[int] = set()
    stack: list[Node] = [] if root is None else [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                yaml.constructor.SafeConstructor().construct_object(node, deep=True)
            except Exception:
                return node
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            for key_node, value_node in reversed(node.value):
                stack.extend((value_node, key_node))
    return None


def _describe(data: object) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    return f"a {type(data).__name__}"


def stringify(value: object, path: str, line: int) -> str:
    """Flatten a YAML value into the text form every field also has.

    Bounded by depth and size because YAML aliases can make a small document
    describe an enormous (or self-containing) value.
    """
    budget = [_MAX_PIECES]

    def walk(item: object, depth: int) -> str:
        budget[0] -= 1
        if depth > _MAX_DEPTH or budget[0] < 0:
            raise BuildError(
                f"YAML front matter value on line {line} is too large or nested too deeply",
                path=path,
                line=line,
            )
        if item is None:
            return ""
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, bytes):
            return item.decode("utf-8", errors="replace")
        if isinstance(item, dict):
            return ", ".join(f"{walk(k, depth + 1)}: {walk(v, depth + 1)}" for k, v in item.items())
        if isinstance(item, list | tuple):
            return ", ".join(walk(element, depth + 1) for element in item)
        if isinstance(item, set | frozenset):
            return ", ".join(sorted(walk(element, depth + 1) for element in item))
        return str(item)

    return walk(value, 0)
