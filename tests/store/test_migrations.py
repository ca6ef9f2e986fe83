"""Alembic is the only way the schema changes: the migrated schema equals the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from controller.store import Store
from controller.store.engine import current_revision, head_revision
from controller.store.models import Base


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    store = Store(database_url, auto_upgrade=True)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    store.close()
    assert diff == []


def test_embedded_sqlite_is_created_and_upgraded_on_first_use(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'controller.db'}"
    store = Store(url)
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    store.close()


def test_the_recorded_head_is_the_newest_migration() -> None:
    import migrations

    assert head_revision() == migrations.HEAD
