"""Fixtures every test module may ask for: the throw-away PostgreSQL cluster and the SQLite/PostgreSQL ``db_url``."""

from tests.pg_support import (  # noqa: F401 - fixtures by name
    db_backend,
    db_url,
    migrated_db_url,
    new_db,
    pg_cluster,
    pg_head_template,
)
