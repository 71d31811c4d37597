"""`alembic upgrade head` on an empty database yields exactly the schema of metadata.create_all
(tables, columns with types and nullability, indexes, unique constraints, primary keys), on SQLite
and on PostgreSQL. A table added to the metadata without a migration fails here: run
`alembic revision --autogenerate -m "..."`."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

import core.storage.tables_all  # noqa: F401
from core.storage.engine import make_engine
from core.storage.schema import metadata
from tests.pg_support import REPO_ROOT, fresh_pg_schema, pg_base_url


def _upgrade(url: str) -> None:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.cmd_opts = type("Opts", (), {"x": [f"db={url}"]})()
    command.upgrade(cfg, "head")


def _shape(url: str) -> dict:
    engine = make_engine(url)
    insp = inspect(engine)
    out = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        cols = {c["name"]: (str(c["type"]).split("(")[0].upper(), c["nullable"]) for c in insp.get_columns(table)}
        idx = {(i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)}
        uq = {(u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)}
        pk = tuple(insp.get_pk_constraint(table)["constrained_columns"])
        out[table] = (cols, idx, uq, pk)
    engine.dispose()
    return out


def _compare(migrated_url: str, created_url: str) -> None:
    engine = make_engine(created_url)
    metadata.create_all(engine)
    engine.dispose()
    _upgrade(migrated_url)
    migrated, created = _shape(migrated_url), _shape(created_url)
    assert sorted(migrated) == sorted(created) == sorted(metadata.tables)
    for table in created:
        assert migrated[table] == created[table], table


def test_upgrade_head_equals_create_all_on_sqlite(tmp_path):
    _compare(f"sqlite:///{tmp_path / 'migrated.db'}", f"sqlite:///{tmp_path / 'created.db'}")


@pytest.mark.integration
def test_upgrade_head_equals_create_all_on_postgresql():
    base = pg_base_url()
    with fresh_pg_schema(base) as migrated, fresh_pg_schema(base) as created:
        _compare(migrated, created)


def test_migration_is_a_no_op_when_already_at_head(tmp_path):
    """Re-running the upgrade (every deploy does) changes nothing and does not fail."""
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    _upgrade(url)
    before = _shape(url)
    _upgrade(url)
    assert _shape(url) == before
