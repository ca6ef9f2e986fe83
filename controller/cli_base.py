"""What every command group shares: the settings/store context and the consoles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from controller.settings import Settings

if TYPE_CHECKING:  # the store pulls in SQLAlchemy: imported when a command needs it
    from controller.store import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Context:
    def __init__(self) -> None:
        self.settings = Settings()
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from controller.store import Store

            self._store = Store.from_settings(self.settings)
        return self._store


pass_context = click.make_pass_decorator(Context, ensure=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))
