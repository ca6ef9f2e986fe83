"""Runtime-layer errors, under the one root defined by the domain layer."""

from __future__ import annotations

from reconcilers.errors import ControllerError


class StoreError(ControllerError):
    """The store could not be read or written."""


class UnknownBlog(ControllerError):
    """No blog with that id is registered."""


class BlogExists(ControllerError):
    """A blog with that id is already registered."""


class ConfigError(ControllerError):
    """A setting or an option has a value the controller cannot use."""
