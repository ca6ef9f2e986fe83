"""Sources: what a remote says (observe) and how to get a file's bytes (fetch)."""

from reconcilers.sources.base import Observation, Source, parse_source_spec
from reconcilers.sources.local import LocalSource

__all__ = ["LocalSource", "Observation", "Source", "parse_source_spec"]
