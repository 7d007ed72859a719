"""Alembic migrations for every package's tables (see ``hotline.db``)."""
