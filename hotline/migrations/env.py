"""Alembic environment: one history over the metadata of every package.

Run from code through ``hotline.db.upgrade``; the engine comes in ``config.attributes["engine"]``
(or a URL in ``sqlalchemy.url``).
"""

from __future__ import annotations

from alembic import context

from hotline.db import make_engine, metadatas

config = context.config
target_metadata = metadatas()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=connection.dialect.name == "sqlite",
                              compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
