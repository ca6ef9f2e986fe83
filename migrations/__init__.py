"""Alembic migrations for the controller's store (run with ``controller db upgrade``)."""
