"""One settings object, read from ``CONTROLLER_*`` once and passed down."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "blog-controller"


def _data_dir() -> Path:
    return user_data_path(APP_NAME)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", extra="ignore")

    data_dir: Path = Field(default_factory=_data_dir)
    database_url: str | None = None
    blogs_dir: Path | None = None
    #: Share of a blog's files a pass may drop after an empty listing.
    max_drop_share: float = 0.5
    history_limit: int = 1000
    #: How many files are fetched and made durable together.
    install_batch: int = 1000
    #: Observe -> plan -> execute rounds per reconcile before giving up on a
    #: source that keeps changing.
    max_rounds: int = 20

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'controller.db'}"

    @property
    def effective_blogs_dir(self) -> Path:
        return self.blogs_dir if self.blogs_dir is not None else self.data_dir / "blogs"
