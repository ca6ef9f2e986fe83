"""Builder plugins: which code turns which files into entries.

A builder is any object with ``build(path, data) -> EntryDraft | None``
(``None``: "this file is not a post"), raising :class:`BuildError` for a
content error (bad metadata, not UTF-8), which rejects the file until its
content changes. Builders are registered under the entry-point group
``controller.builders``; the value may be a class (instantiated without
arguments), an object with ``build``, or a plain function of ``(path, data)``.

Which builder handles a file is decided by its suffix, through rules that
are process-wide (set once from ``CONTROLLER_BUILDERS``): a file is a post
when a rule names a builder for its suffix, so sources and the executor can
decide by name alone which bytes to keep for the build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from reconcilers.errors import ControllerError

from .entry import POST_SUFFIXES, EntryDraft, build_entry

GROUP = "controller.builders"
DEFAULT = "default"
DEFAULT_RULES: Mapping[str, str] = dict.fromkeys(sorted(POST_SUFFIXES), DEFAULT)


class Builder(Protocol):
    def build(self, path: str, data: bytes) -> EntryDraft | None: ...


class DefaultBuilder:
    """Markdown, plain text and HTML posts with ``Key: value`` metadata."""

    def build(self, path: str, data: bytes) -> EntryDraft | None:
        return build_entry(path, data)


class UnknownBuilder(ControllerError):
    """A rule names a builder no installed package registers."""


class _FunctionBuilder:
    def __init__(self, function: Callable[[str, bytes], EntryDraft | None]) -> None:
        self.function = function

    def build(self, path: str, data: bytes) -> EntryDraft | None:
        return self.function(path, data)


def available() -> set[str]:
    """The names registered under ``controller.builders`` (nothing is imported)."""
    return {ep.name for ep in entry_points(group=GROUP)}


@cache
def load(name: str) -> Builder:
    """The builder registered as ``name``, loaded once per process."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise UnknownBuilder(
            f"no builder {name!r} is installed (entry-point group {GROUP!r};"
            f" installed: {', '.join(sorted(available())) or 'none'})"
        )
    target: Any = found[0].load()
    if isinstance(target, type):
        target = target()
    if hasattr(target, "build"):
        builder: Builder = target
        return builder
    return _FunctionBuilder(target)


def suffix_of(path: str) -> str:
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


class Rules:
    """Suffix -> builder name."""

    def __init__(self, rules: Mapping[str, str]) -> None:
        self.rules = {suffix.lower(): name for suffix, name in rules.items() if name}

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, str]) -> Rules:
        """The default rules changed by ``overrides`` (an empty name removes a suffix)."""
        merged = dict(DEFAULT_RULES)
        for suffix, name in overrides.items():
            key = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
            merged[key] = name
        return cls(merged)

    def builder_for(self, path: str) -> str | None:
        return self.rules.get(suffix_of(path))

    def check(self) -> None:
        """Every builder a rule names is installed (so a typo fails at start)."""
        missing = set(self.rules.values()) - available()
        if missing:
            raise UnknownBuilder(
                f"CONTROLLER_BUILDERS names builders that are not installed:"
                f" {', '.join(sorted(missing))} (installed: {', '.join(sorted(available()))})"
            )


_lock = threading.Lock()
_rules = Rules(DEFAULT_RULES)


def configure(rules: Rules) -> None:
    global _rules
    with _lock:
        _rules = rules


def current() -> Rules:
    return _rules


def is_post(path: str) -> bool:
    """Decide by name alone, so that a source can skip fetching everything else."""
    return _rules.builder_for(path) is not None
