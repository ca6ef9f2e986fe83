"""A faithful local HTTPS fake of the Dropbox API v2, for tests and benchmarks.

The real ``dropbox`` SDK talks to it unmodified; see ``FakeDropbox``.
"""

from .faults import Fault
from .server import SDK_HOST_VARIABLES, FakeDropbox, prebound_listener, sdk_environment
from .state import content_hash

__all__ = [
    "SDK_HOST_VARIABLES",
    "FakeDropbox",
    "Fault",
    "content_hash",
    "prebound_listener",
    "sdk_environment",
]
