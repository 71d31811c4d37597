"""Alembic environment: the target is the whole Wardsight schema (every table module registered in
core.storage.tables_all); the database URL is `-x db=URL`, else WARDSIGHT_DB_URL, else the default."""
from __future__ import annotations

from alembic import context

import core.storage.tables_all  # noqa: F401  (registers every feature's tables on metadata)
from core.config import Settings
from core.storage.engine import make_engine
from core.storage.schema import metadata

target_metadata = metadata


def database_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("db") or Settings.from_env().db_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        # batch mode: SQLite cannot ALTER most things in place; Alembic copies the table instead
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
