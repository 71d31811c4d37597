"""Repository: the one object that reads and writes the database. Pages and services call its methods;
nobody else writes SQL. All statements are parameterised SQLAlchemy Core; lower-level errors are
re-raised as `core.errors.StorageError`.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import PrimaryKeyConstraint, Table, UniqueConstraint, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import StorageError
from core.models import to_ms
from core.storage import schema as s
from core.storage.engine import make_engine, read_frame


def _records(df: pd.DataFrame) -> list[dict]:
    """DataFrame → list of dicts with None for missing values (what DB drivers expect)."""
    if df.empty:
        return []
    out = df.astype(object).where(df.notna(), None)
    return out.to_dict(orient="records")


def _tuples(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Rows as tuples of plain Python values, missing values as None (what _records gives, built
    column-wise with numpy instead of per cell)."""
    out = []
    for c in cols:
        col = df[c]
        if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_integer_dtype(col.dtype) \
                or pd.api.types.is_bool_dtype(col.dtype):
            arr = col.to_numpy()
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                obj = arr.astype(object)
                obj[np.isnan(arr)] = None
                out.append(obj.tolist())
            else:
                out.append(arr.tolist())
        elif isinstance(col.dtype, pd.StringDtype):          # always str or missing
            out.append(col.to_numpy(dtype=object, na_value=None).tolist())
        else:
            arr = col.to_numpy(dtype=object)
            miss = pd.isna(arr)
            if miss.any():
                arr = arr.copy()
                arr[miss] = None
            if any(issubclass(t, np.generic) for t in set(map(type, arr))):
                arr = np.array([v.item() if isinstance(v, np.generic) else v for v in arr], dtype=object)
            out.append(arr.tolist())
    return list(zip(*out))


def _in_key_order(table: Table, df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted (stably: duplicates keep their order, so "first one wins" is unchanged) by the
    table's unique key, so a batch walks the key index in order instead of jumping around it (about
    2× faster inserts in SQLite at 50 k rows). Tables keyed by an autoincrement id keep their order."""
    keys = next((list(c.columns.keys()) for c in table.constraints
                 if isinstance(c, UniqueConstraint) and not isinstance(c, PrimaryKeyConstraint)), None)
    if keys is None:
        pk = list(table.primary_key.columns.keys())
        keys = pk if pk and not any(table.c[k].autoincrement is True for k in pk) else None
    if not keys or not set(keys) <= set(df.columns) or len(df) < 2:
        return df
    return df.sort_values(keys, kind="stable")


class Repository:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str) -> "Repository":
        return cls(make_engine(url))

    @contextmanager
    def begin(self):
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}") from exc

    def create_schema(self) -> None:
        import core.storage.tables_all  # noqa: F401  (registers every feature's tables on metadata)
        try:
            s.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot create schema: {exc}") from exc

    # ---------- reference data ----------
    def load_site(self, site) -> None:
        """Replace the site's reference tables (floors, wards, rooms, beds, readers, entities, tags)."""
        tables = {
            s.sites: pd.DataFrame([{"site_id": site.site_id, "name": site.name}]),
            s.floors: pd.DataFrame([{"floor_id": f, "site_id": site.site_id, "name": p.name, "level": site.levels[f]}
                                    for f, p in site.floors.items()]),
            s.wards: site.wards[["ward_id", "floor_id", "name"]],
            s.rooms: site.rooms[["room_id", "floor_id", "ward_id", "name", "room_type", "cx_m", "cy_m"]],
            s.beds: site.beds[["bed_id", "room_id", "name", "cx_m", "cy_m"]],
            s.readers: site.readers[["reader_id", "antenna", "floor_id", "room_id", "bed_id", "x_m", "y_m"]],
            s.entities: site.entities.drop(columns=["shift"]).assign(attrs=None),
            s.tags: site.tags[["tag_id", "entity_id"]].assign(active=True),
        }
        with self.begin() as conn:
            for table, df in tables.items():
                conn.execute(delete(table))
                rows = _records(df)
                if rows:
                    conn.execute(insert(table), rows)

    def entities(self) -> pd.DataFrame:
        return self._frame(select(s.entities))

    # ---------- feed writes ----------
    def write_tick(self, *, reads: pd.DataFrame | None, presence: pd.DataFrame, changes: pd.DataFrame,
                   quarantine: pd.DataFrame, source: str, now: datetime, durable: bool = True) -> None:
        """One transaction per tick: raw reads (idempotent), presence upserts, presence changes,
        quarantine rows and the feed counters. `durable=False` (PostgreSQL: synchronous_commit off
        for this transaction) returns before the WAL reaches disk: a server crash can lose the last
        fraction of a second of ticks, never half a tick. Only for feeds that can lose a tick (the
        simulator); the MQTT ingest acknowledges after a durable commit."""
        now_ms = to_ms(now)
        with self.begin() as conn:
            if not durable and self.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            n_reads = 0
            if reads is not None and len(reads):
                n_reads = len(reads)
                if not self._bulk_write(conn, s.raw_reads, reads, conflict="ignore"):
                    self._insert_ignore(conn, s.raw_reads, _records(reads))
            if len(presence):
                self._upsert_presence(conn, presence)
            if len(changes) and not self._bulk_write(conn, s.presence_changes, changes):
                conn.execute(insert(s.presence_changes), _records(changes))
            if len(quarantine):
                q = pd.DataFrame({"received_ms": now_ms, "source": quarantine["source"].astype(str),
                                  "reason": quarantine["reason"].astype(str).str.slice(0, 200),
                                  "raw": quarantine["raw"].astype(str).str.slice(0, 2000)})
                conn.execute(insert(s.quarantine), _records(q))
            self._bump_stats(conn, source, n_reads, len(quarantine), now_ms)

    def raw_read_rows(self, located: pd.DataFrame) -> pd.DataFrame:
        """Located reads → raw_reads rows."""
        return pd.DataFrame({"tag_id": located["tag_id"].astype(str),
                             "ts_ms": located["ts"].astype("datetime64[ms, UTC]").astype("int64"),
                             "origin": located["origin"].astype(str), "rssi_dbm": located["rssi_dbm"],
                             "x_m": located["x_m"], "y_m": located["y_m"], "floor_id": located["floor_id"],
                             "room_id": located["room_id"], "bed_id": located["bed_id"]})

    def _insert_ignore(self, conn: Connection, table: Table, rows: list[dict]) -> None:
        if self.dialect == "sqlite":
            conn.execute(insert(table).prefix_with("OR IGNORE"), rows)
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
        else:
            conn.execute(insert(table), rows)

    def _upsert_presence(self, conn: Connection, presence: pd.DataFrame) -> None:
        if self._bulk_write(conn, s.presence, presence, conflict="update"):
            return
        rows = _records(presence[["tag_id", "entity_id", "floor_id", "room_id", "bed_id", "x_m", "y_m",
                                  "since_ms", "last_seen_ms"]])
        if self.dialect in ("sqlite", "postgresql"):
            if self.dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as d_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as d_insert
            stmt = d_insert(s.presence)
            cols = {c: stmt.excluded[c] for c in ("entity_id", "floor_id", "room_id", "bed_id", "x_m", "y_m",
                                                   "since_ms", "last_seen_ms")}
            conn.execute(stmt.on_conflict_do_update(index_elements=["tag_id"], set_=cols), rows)
        else:  # pragma: no cover - other dialects
            conn.execute(delete(s.presence).where(s.presence.c.tag_id.in_([r["tag_id"] for r in rows])))
            conn.execute(insert(s.presence), rows)

    # ---------- bulk fast path (feed writes at hospital scale) ----------
    def _bulk_write(self, conn: Connection, table: Table, df: pd.DataFrame, conflict: str | None = None) -> bool:
        """Write a frame through the raw DB-API connection of this transaction: sqlite3 executemany of
        plain tuples (WAL), or PostgreSQL COPY into a temp table then one INSERT ... SELECT. Same rows
        and conflict rules as the Core statements, at a fraction of their per-row cost (dict
        records and per-row parameter processing dominate otherwise). `conflict`: None (plain
        insert), "ignore" (keep the stored row) or "update" (replace all non-key columns).
        Returns False when this dialect has no fast path."""
        if self.dialect not in ("sqlite", "postgresql"):
            return False
        cols = [c.name for c in table.columns if c.name in df.columns]
        if self.dialect == "sqlite":
            df = _in_key_order(table, df)
            self._sqlite_cache(conn)
        rows = _tuples(df, cols)
        keys = [c.name for c in table.primary_key.columns] if conflict == "update" else []
        collist = ", ".join(cols)
        if conflict == "update":
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
            tail = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        else:
            tail = " ON CONFLICT DO NOTHING" if conflict == "ignore" else ""
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(cols))
            verb = "INSERT OR IGNORE" if conflict == "ignore" else "INSERT"      # as the Core path does
            conn.exec_driver_sql(f"{verb} INTO {table.name} ({collist}) VALUES ({marks})"
                                 f"{tail if conflict == 'update' else ''}", rows)
            return True
        tmp = f"_ws_bulk_{table.name}"
        # dropped at commit: a pooled session keeps no object that depends on the real table
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} ON COMMIT DROP AS "
                             f"SELECT {collist} FROM {table.name} WITH NO DATA")
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f"COPY {tmp} ({collist}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({collist}) SELECT {collist} FROM {tmp}{tail}")
        conn.exec_driver_sql(f"TRUNCATE {tmp}")
        return True

    @staticmethod
    def _sqlite_cache(conn: Connection) -> None:
        """A 64 MB page cache for the feed writer's connection (SQLite's default is 2 MB): the
        raw_reads identity index and the presence key stay in memory between ticks."""
        info = conn.connection.info
        if not info.get("ws_cache"):
            conn.exec_driver_sql("PRAGMA cache_size=-65536")
            info["ws_cache"] = True

    def _bump_stats(self, conn: Connection, source: str, accepted: int, quarantined: int, now_ms: int) -> None:
        res = conn.execute(update(s.feed_stats).where(s.feed_stats.c.source == source).values(
            accepted=s.feed_stats.c.accepted + accepted, quarantined=s.feed_stats.c.quarantined + quarantined,
            last_batch_ms=now_ms))
        if res.rowcount == 0:
            conn.execute(insert(s.feed_stats).values(source=source, accepted=accepted, quarantined=quarantined,
                                                     last_batch_ms=now_ms))

    # ---------- reads for pages ----------
    def _frame(self, stmt, params: dict | None = None) -> pd.DataFrame:
        return read_frame(self.engine, stmt, "the store", params)

    def presence(self, floor_id: str | None = None) -> pd.DataFrame:
        """Current presence joined with entity details (one row per tag ever seen)."""
        p, e = s.presence, s.entities
        stmt = select(p, e.c.kind, e.c.subtype, e.c.name, e.c.short_name, e.c.ward_id, e.c.status,
                      e.c.home_id).join(e, e.c.entity_id == p.c.entity_id)
        if floor_id is not None:
            stmt = stmt.where(p.c.floor_id == floor_id)
        return self._frame(stmt)

    def presence_changes(self, entity_id: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        c = s.presence_changes
        return self._frame(select(c).where(c.c.entity_id == entity_id, c.c.ts_ms > start_ms, c.c.ts_ms <= end_ms)
                           .order_by(c.c.ts_ms))

    def place_at(self, entity_id: str, at_ms: int) -> dict | None:
        """The last presence change at or before `at_ms` (None: never seen by then)."""
        c = s.presence_changes
        df = self._frame(select(c).where(c.c.entity_id == entity_id, c.c.ts_ms <= at_ms)
                         .order_by(c.c.ts_ms.desc()).limit(1))
        return None if df.empty else df.iloc[0].to_dict()

    def quarantine_summary(self, since_ms: int = 0) -> pd.DataFrame:
        """Quarantined rows per source and kind of reason ("unknown tag X" and "unknown tag Y" are
        one kind), newest first within equal counts."""
        q = s.quarantine
        df = self._frame(select(q.c.source, q.c.reason, func.count().label("count"),
                                func.max(q.c.received_ms).label("last_ms"))
                         .where(q.c.received_ms >= since_ms).group_by(q.c.source, q.c.reason))
        if df.empty:
            return pd.DataFrame(columns=["source", "reason", "count", "last_ms"])
        df["reason"] = df["reason"].str.replace(r"\b[0-9A-F]{8,}\b|[-+]?\d+(?:\.\d+)?", "…", regex=True)
        return (df.groupby(["source", "reason"], as_index=False).agg(count=("count", "sum"), last_ms=("last_ms", "max"))
                .sort_values(["count", "last_ms"], ascending=False, ignore_index=True))

    def recent_quarantine(self, limit: int = 50) -> pd.DataFrame:
        q = s.quarantine
        return self._frame(select(q).order_by(q.c.id.desc()).limit(limit))

    def feed_stats(self) -> pd.DataFrame:
        return self._frame(select(s.feed_stats))

    def table_count(self, table: Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def purge_raw_reads(self, older_than_ms: int) -> int:
        with self.begin() as conn:
            return conn.execute(delete(s.raw_reads).where(s.raw_reads.c.ts_ms < older_than_ms)).rowcount

    def ping(self) -> bool:
        with self.begin() as conn:
            conn.execute(text("SELECT 1"))
        return True

    # ---------- ingest idempotency and infrastructure health (issue 6) ----------
    def existing_reads(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The subset of raw_reads rows (tag_id, ts_ms, origin) already stored: a redelivered MQTT
        message or a replayed file must not move presence or fire hooks a second time."""
        if rows.empty:
            return rows[["tag_id", "ts_ms", "origin"]].iloc[:0]
        r = s.raw_reads
        found = []
        tags = pd.unique(rows["tag_id"].astype(str))
        lo, hi = int(rows["ts_ms"].min()), int(rows["ts_ms"].max())
        for start in range(0, len(tags), 500):          # bounded IN lists; uses the identity index
            chunk = [str(t) for t in tags[start:start + 500]]
            found.append(self._frame(select(r.c.tag_id, r.c.ts_ms, r.c.origin).where(
                r.c.tag_id.in_(chunk), r.c.ts_ms >= lo, r.c.ts_ms <= hi)))
        stored = pd.concat(found, ignore_index=True)
        return rows[["tag_id", "ts_ms", "origin"]].astype({"tag_id": object, "origin": object}).merge(
            stored.astype({"tag_id": object, "origin": object, "ts_ms": "int64"}), on=["tag_id", "ts_ms", "origin"])

    def record_lag(self, source: str, lag_ms: int) -> None:
        """Ingest lag of the source's last committed batch (feed_stats.last_lag_ms)."""
        with self.begin() as conn:
            conn.execute(update(s.feed_stats).where(s.feed_stats.c.source == source).values(last_lag_ms=int(lag_ms)))

    def last_read_per_origin(self, origins: list[str]) -> pd.DataFrame:
        """origin, last_read_ms (newest raw read per antenna; never-heard origins are left out).
        One max() per origin, each answered from the (origin, ts_ms) index without a scan."""
        from sqlalchemy import literal, union_all
        r = s.raw_reads
        frames = []
        for i in range(0, len(origins), 200):
            parts = [select(literal(o).label("origin"),
                            select(func.max(r.c.ts_ms)).where(r.c.origin == o).scalar_subquery().label("last_read_ms"))
                     for o in origins[i:i + 200]]
            frames.append(self._frame(union_all(*parts)))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["origin", "last_read_ms"])
        return out[out["last_read_ms"].notna()].reset_index(drop=True)

    def quarantine_since(self, since_ms: int, reason_prefix: str = "") -> pd.DataFrame:
        q = s.quarantine
        stmt = select(q).where(q.c.received_ms >= since_ms)
        if reason_prefix:
            stmt = stmt.where(q.c.reason.startswith(reason_prefix, autoescape=True))
        return self._frame(stmt.order_by(q.c.id))
