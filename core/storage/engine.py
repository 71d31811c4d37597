"""Engine factory: SQLite (WAL, busy timeout) by default, PostgreSQL via psycopg 3 in production."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import StorageError

PG_CONNECT_TIMEOUT_S = 5


def make_engine(db_url: str) -> Engine:
    """Create an engine for `db_url`; SQLite files get WAL mode so pages read while the feed writes."""
    try:
        if db_url.startswith("sqlite"):
            path = db_url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if path in ("", ":memory:"):
                from sqlalchemy.pool import StaticPool
                kwargs["poolclass"] = StaticPool
            engine = create_engine(db_url, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # pre-ping: a connection broken by a database restart is replaced, not handed out; the connect
        # timeout turns an unreachable server into a StorageError in seconds (the ingest buffers and
        # retries) instead of a hang of the TCP default.
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S} if db_url.startswith("postgresql") else {}
        return create_engine(db_url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_recycle=1800,
                             connect_args=connect_args)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot open database {db_url.split('@')[-1]}: {exc}") from exc


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def read_frame(engine: Engine, stmt, what: str = "database", params: dict | None = None):
    """Run a SELECT and return a DataFrame with the statement's columns (also when empty); driver
    errors become StorageError naming `what`. The one read path of every table module."""
    import pandas as pd
    try:
        with engine.connect() as conn:
            res = conn.execute(stmt, params or {})
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read {what}: {str(exc).splitlines()[0][:200]}") from exc
