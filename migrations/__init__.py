"""Alembic migrations for the controller's store (run with ``controller db upgrade``)."""

#: The newest revision, kept here so a start-up check needs no Alembic import;
#: a test keeps it equal to the head of the migration scripts.
HEAD = "0004"
