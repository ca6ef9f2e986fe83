"""A Dropbox blog wired to the local fake of the API, through the real SDK (helpers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import tree

from controller.reconcile import PassReport, Reconciler
from controller.settings import Settings
from controller.store import Store

APP_KEY, APP_SECRET = "app-key", "app-secret"
ROOT = "/Blogs/My Blog"


@dataclass
class DropboxBlog:
    fake: Any
    store: Store
    settings: Settings
    account: str
    folder: Path
    blog_id: str = "b"
    root: str = ROOT
    reconciler: Reconciler = field(init=False)

    def __post_init__(self) -> None:
        self.reconciler = Reconciler(self.store, self.settings)

    def put(self, path: str, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self.fake.put(self.account, f"{self.root}/{path}", data)
        return result

    def move(self, src: str, dst: str) -> None:
        self.fake.move(self.account, f"{self.root}/{src}", f"{self.root}/{dst}")

    def delete(self, path: str) -> None:
        self.fake.delete(self.account, f"{self.root}/{path}")

    def reconcile(self, **kwargs: Any) -> PassReport:
        return self.reconciler.reconcile(self.blog_id, **kwargs)

    def downloads(self) -> int:
        return len(self.fake.downloads)

    def remote(self) -> dict[str, bytes | None]:
        """The fake's blog folder in the shape of ``support.tree``."""
        files: dict[str, bytes | None] = dict(self.fake.tree(self.account, self.root))
        files.update(dict.fromkeys(self.fake.folders(self.account, self.root)))
        return dict(sorted(files.items()))

    def assert_converged(self) -> None:
        """Byte-identical to the fake, and a second pass does nothing at all."""
        assert tree(self.folder) == self.remote()
        downloads, stamps = self.downloads(), _stamps(self.folder)
        report = self.reconcile()
        assert report.actions == {"set": 0, "move": 0, "drop": 0}, report
        assert self.downloads() == downloads, "a converged pass downloaded something"
        assert _stamps(self.folder) == stamps, "a converged pass rewrote something"


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def dropbox_settings(tmp_path: Path, fake: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{tmp_path / 'controller.db'}",
        "dropbox_app_key": APP_KEY,
        "dropbox_app_secret": APP_SECRET,
        "dropbox_ca_certs": Path(fake.ca_path),
    }
    return Settings(**{**values, **overrides})
