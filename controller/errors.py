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


class LeaseBusy(ControllerError):
    """Another process holds the blog's lease and did not let go in time."""

    def __str__(self) -> str:
        return self.message  # it names the blog itself: "blog B is busy (held by ...)"


class LeaseLost(ControllerError):
    """This process's lease ended (expired or taken over): it must stop changing the blog."""


class LeaseBackendError(ControllerError):
    """The lease backend (the database or Redis) could not be reached."""


class PassStopped(ControllerError):
    """A pass ended early at a checkpoint because the process is shutting down."""
