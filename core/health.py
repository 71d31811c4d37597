"""Infrastructure health: silent readers, tags with a low battery, reader clock skew, ingest rate and lag.

What is recorded, and where:

* every stored tick (any feed: simulator, MQTT ingest, file replay) runs the hook installed here. It
  keeps the newest `battery_pct` per tag (`tag_battery`) and, per reader and minute, how many reads
  arrived and how far their timestamps were from the server clock at ingest (`reader_minutes`:
  count, sum, min and max of `ts - now` in ms). The sign says who is ahead: a positive skew is a
  reader clock ahead of the server; a negative one is transport + batching delay plus a late clock.
* "silent" compares the readers of the site description with the newest read per origin in
  `raw_reads` (one indexed look-up per antenna), so it holds for every feed, also after a restart.
* reads quarantined for clock skew (`core.ingest`: more than 30 s ahead) are counted per reader from
  the quarantine table, since they never reach the hook.

Replays are historic: their skew is meaningless, so `HealthRecorder.live = False` records batteries
and counts but not skew.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import BigInteger, Column, Float, Index, String, Table, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from core.storage.engine import read_frame
from core.errors import StorageError
from core.models import to_ms
from core.storage import schema as s

MINUTE_MS = 60_000
KEEP_MINUTES_MS = 24 * 3_600_000        # reader_minutes rows older than a day are purged by the hook
SKEW_REASON_PREFIX = "clock skew"       # core.ingest's quarantine reason for reads ahead of the server

tag_battery = Table("tag_battery", s.metadata,
                    Column("tag_id", String(64), primary_key=True),
                    Column("battery_pct", Float, nullable=False),
                    Column("ts_ms", BigInteger, nullable=False))      # time of the read that reported it

reader_minutes = Table("reader_minutes", s.metadata,
                       Column("reader_id", String(80), primary_key=True),   # reader id, or rtls:<floor>
                       Column("minute_ms", BigInteger, primary_key=True),
                       Column("reads", BigInteger, nullable=False),
                       Column("skew_sum_ms", Float),                  # NULL when not live (replay)
                       Column("skew_min_ms", Float),
                       Column("skew_max_ms", Float),
                       Column("last_ts_ms", BigInteger, nullable=False),
                       Index("ix_reader_minutes_minute", "minute_ms"))

# Newest read per antenna is one index look-up per origin (silent readers) instead of a scan.
Index("ix_raw_reads_origin_ts", s.raw_reads.c.origin, s.raw_reads.c.ts_ms)


# ---------------------------------------------------------------- recording (pipeline hook)
BATTERY_REFRESH_MS = 300_000     # re-store an unchanged battery level every 5 min


class HealthRecorder:
    """The tick hook: battery per tag and per-reader minute counts with clock skew."""

    def __init__(self, repo):
        self.repo = repo
        self.live = True
        self._last_purge_ms = 0
        # battery levels change by about 1 % a day: store a tag's report when its level changed or
        # the stored one is older than BATTERY_REFRESH_MS, not on every read (50 k upserts a second)
        self._battery_written = pd.DataFrame(columns=["battery_pct", "ts_ms"], dtype=float)

    def __call__(self, result, now: datetime) -> None:
        located = result.located
        if located is None or located.empty:
            return
        now_ms = to_ms(now)
        battery = self._battery_to_store(battery_rows(located))
        minutes = minute_rows(located, now_ms, live=self.live)
        try:
            with self.repo.engine.begin() as conn:
                if len(battery):
                    _upsert_battery(conn, self.repo.dialect, battery)
                if len(minutes):
                    _upsert_minutes(conn, self.repo.dialect, minutes)
                if now_ms - self._last_purge_ms > 10 * MINUTE_MS:
                    conn.execute(delete(reader_minutes).where(reader_minutes.c.minute_ms < now_ms - KEEP_MINUTES_MS))
                    self._last_purge_ms = now_ms
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot record health: {str(exc).splitlines()[0][:200]}") from exc

    def _battery_to_store(self, battery: pd.DataFrame) -> pd.DataFrame:
        if battery.empty:
            return battery
        prev = self._battery_written.reindex(battery["tag_id"].to_numpy())
        changed = (prev["battery_pct"].to_numpy() != battery["battery_pct"].to_numpy()) | \
                  (battery["ts_ms"].to_numpy() - prev["ts_ms"].fillna(-np.inf).to_numpy() > BATTERY_REFRESH_MS)
        out = battery[changed]
        if len(out):
            upd = out.set_index("tag_id")[["battery_pct", "ts_ms"]].astype(float)
            kept = self._battery_written.drop(index=upd.index, errors="ignore")
            self._battery_written = pd.concat([kept, upd]) if len(kept) else upd
        return out

    def __repr__(self) -> str:
        return "health"


def install(pipeline) -> None:
    recorder = HealthRecorder(pipeline.repo)
    pipeline.health = recorder
    pipeline.hooks.append(recorder)


def battery_rows(located: pd.DataFrame) -> pd.DataFrame:
    """Newest battery report per tag in a batch (reads without one are ignored)."""
    if "battery_pct" not in located.columns:
        return pd.DataFrame(columns=["tag_id", "battery_pct", "ts_ms"])
    b = located.loc[located["battery_pct"].notna(), ["tag_id", "ts", "battery_pct"]]
    if b.empty:
        return pd.DataFrame(columns=["tag_id", "battery_pct", "ts_ms"])
    b = b.assign(ts_ms=b["ts"].astype("datetime64[ms, UTC]").astype("int64")).sort_values("ts_ms")
    b = b.drop_duplicates("tag_id", keep="last")
    return pd.DataFrame({"tag_id": b["tag_id"].astype(str).to_numpy(),
                         "battery_pct": b["battery_pct"].astype(float).to_numpy(), "ts_ms": b["ts_ms"].to_numpy()})


def reader_key(located: pd.DataFrame) -> pd.Series:
    """The clock owner of each read: the reader for reader reads, `rtls:<floor>` for positions."""
    reader = located["reader_id"].astype(object)
    return reader.where(reader.notna(), "rtls:" + located["floor_id"].astype(str)).astype(str)


def minute_rows(located: pd.DataFrame, now_ms: int, *, live: bool) -> pd.DataFrame:
    """Per reader: reads, skew sum/min/max (ts - now, ms) and newest ts, in the minute of `now`."""
    ts_ms = located["ts"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    frame = pd.DataFrame({"reader_id": reader_key(located).to_numpy(), "skew": (ts_ms - now_ms).astype(float),
                          "ts_ms": ts_ms})
    g = frame.groupby("reader_id", sort=True)
    out = pd.DataFrame({"reads": g.size(), "skew_sum_ms": g["skew"].sum(), "skew_min_ms": g["skew"].min(),
                        "skew_max_ms": g["skew"].max(), "last_ts_ms": g["ts_ms"].max()}).reset_index()
    if not live:
        out[["skew_sum_ms", "skew_min_ms", "skew_max_ms"]] = np.nan
    out.insert(1, "minute_ms", now_ms - now_ms % MINUTE_MS)
    return out


def _dialect_insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def _upsert_battery(conn, dialect: str, rows: pd.DataFrame) -> None:
    stmt = _dialect_insert(dialect)(tag_battery)
    # a late-arriving older report never overwrites a newer one
    conn.execute(stmt.on_conflict_do_update(index_elements=["tag_id"],
                                            set_={"battery_pct": stmt.excluded.battery_pct, "ts_ms": stmt.excluded.ts_ms},
                                            where=stmt.excluded.ts_ms >= tag_battery.c.ts_ms), _records(rows))


def _upsert_minutes(conn, dialect: str, rows: pd.DataFrame) -> None:
    stmt = _dialect_insert(dialect)(reader_minutes)
    t, x = reader_minutes.c, stmt.excluded
    lo, hi = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    # coalesce: a NULL (replay) minute merged with a live one keeps the live numbers
    conn.execute(stmt.on_conflict_do_update(index_elements=["reader_id", "minute_ms"], set_={
        "reads": t.reads + x.reads,
        "skew_sum_ms": func.coalesce(t.skew_sum_ms, 0.0) + func.coalesce(x.skew_sum_ms, 0.0),
        "skew_min_ms": func.coalesce(lo(t.skew_min_ms, x.skew_min_ms), t.skew_min_ms, x.skew_min_ms),
        "skew_max_ms": func.coalesce(hi(t.skew_max_ms, x.skew_max_ms), t.skew_max_ms, x.skew_max_ms),
        "last_ts_ms": hi(t.last_ts_ms, x.last_ts_ms)}), _records(rows))


# ---------------------------------------------------------------- reading (page)
@dataclass
class HealthReport:
    readers: pd.DataFrame       # reader_id, antenna, floor_id, room_id, last_read_ms, silent_s, silent
    low_battery: pd.DataFrame   # tag_id, entity_id, name, kind, battery_pct, reported_ms
    clock: pd.DataFrame         # reader_id, reads, skew_mean_ms, skew_min_ms, skew_max_ms, quarantined_skew
    rate: pd.DataFrame          # minute_ms, reads (all readers), lag_mean_ms
    feeds: pd.DataFrame         # feed_stats: source, accepted, quarantined, last_batch_ms, last_lag_ms

    @property
    def silent_count(self) -> int:
        return int(self.readers["silent"].sum()) if len(self.readers) else 0


def silent_readers(repo, site, now: datetime, silent_after_s: float) -> pd.DataFrame:
    """Every antenna of the site with its newest read; `silent` when it was heard but not for
    `silent_after_s`; `never` when it has not been heard at all since the store began (a wiring or
    configuration question rather than an outage, so it is counted apart)."""
    rd = site.readers[["reader_id", "antenna", "floor_id", "room_id"]].copy()
    rd["origin"] = rd["reader_id"].astype(str) + ":" + rd["antenna"].astype(int).astype(str)
    last = repo.last_read_per_origin(rd["origin"].tolist())
    rd = rd.merge(last, on="origin", how="left")
    age_s = (to_ms(now) - rd["last_read_ms"].astype(float)) / 1000.0
    rd["silent_s"] = age_s
    heard = np.isfinite(age_s.to_numpy())
    rd["never"] = ~heard
    rd["silent"] = heard & (age_s.to_numpy() > silent_after_s)
    return rd.sort_values(["silent", "silent_s"], ascending=[False, False], na_position="first",
                          ignore_index=True)


def silent_by_reader(readers: pd.DataFrame) -> pd.DataFrame:
    """Silent antennas folded per reader (one row per reader, longest-silent first): reader_id,
    floor_id, room_id, antennas ("1, 2, 5"), last_read_ms (newest of them), silent_s (shortest)."""
    sil = readers[readers["silent"]]
    if sil.empty:
        return pd.DataFrame(columns=["reader_id", "floor_id", "room_id", "antennas", "last_read_ms", "silent_s"])
    g = sil.assign(ant=sil["antenna"].astype(int).astype(str)).groupby("reader_id", sort=False)
    out = g.agg(floor_id=("floor_id", "first"), room_id=("room_id", "first"), antennas=("ant", ", ".join),
                last_read_ms=("last_read_ms", "max"), silent_s=("silent_s", "min")).reset_index()
    return out.sort_values("silent_s", ascending=False, na_position="first", ignore_index=True)


def low_battery(repo, site, threshold_pct: float) -> pd.DataFrame:
    b = _frame(repo, select(tag_battery).where(tag_battery.c.battery_pct < threshold_pct)
               .order_by(tag_battery.c.battery_pct))
    tags = site.tags[["tag_id", "entity_id"]].merge(site.entities[["entity_id", "name", "kind"]], on="entity_id")
    out = b.merge(tags, on="tag_id", how="left").rename(columns={"ts_ms": "reported_ms"})
    return out[["tag_id", "entity_id", "name", "kind", "battery_pct", "reported_ms"]]


def clock_skew(repo, now: datetime, window_s: float = 900.0) -> pd.DataFrame:
    """Per reader over the last `window_s`: mean, min and max of (read ts - server time at ingest), and
    how many reads were quarantined for a clock ahead of the server."""
    since = to_ms(now) - int(window_s * 1000)
    m = reader_minutes.c
    df = _frame(repo, select(m.reader_id, func.sum(m.reads).label("reads"),
                             func.sum(m.skew_sum_ms).label("skew_sum_ms"), func.min(m.skew_min_ms).label("skew_min_ms"),
                             func.max(m.skew_max_ms).label("skew_max_ms"))
                .where(m.minute_ms >= since - since % MINUTE_MS, m.skew_sum_ms.is_not(None)).group_by(m.reader_id))
    df["skew_mean_ms"] = df["skew_sum_ms"].astype(float) / df["reads"].astype(float)
    q = skew_quarantine(repo, since)
    out = df.merge(q, on="reader_id", how="outer")
    out["reads"] = out["reads"].fillna(0).astype("int64")
    out["quarantined_skew"] = out["quarantined_skew"].fillna(0).astype("int64")
    return out[["reader_id", "reads", "skew_mean_ms", "skew_min_ms", "skew_max_ms", "quarantined_skew"]] \
        .sort_values("reader_id", ignore_index=True)


def skew_quarantine(repo, since_ms: int) -> pd.DataFrame:
    """Reads quarantined as "clock skew" since `since_ms`, counted per reader (from the raw row)."""
    rows = repo.quarantine_since(since_ms, reason_prefix=SKEW_REASON_PREFIX)
    if rows.empty:
        return pd.DataFrame({"reader_id": pd.Series(dtype=object), "quarantined_skew": pd.Series(dtype="int64")})
    reader = rows["raw"].map(_reader_of_raw)
    return reader.value_counts().rename_axis("reader_id").reset_index(name="quarantined_skew")


def _reader_of_raw(raw: str) -> str:
    try:
        obj = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return "(unreadable)"
    if not isinstance(obj, dict):
        return "(unreadable)"
    if obj.get("reader_id"):
        return str(obj["reader_id"])
    return f"rtls:{obj.get('floor_id')}" if obj.get("floor_id") else "(unknown)"


def ingest_rate(repo, now: datetime, window_s: float = 3600.0) -> pd.DataFrame:
    """Reads per minute over all readers, with the mean lag (server time at ingest - read ts)."""
    since = to_ms(now) - int(window_s * 1000)
    m = reader_minutes.c
    df = _frame(repo, select(m.minute_ms, func.sum(m.reads).label("reads"), func.sum(m.skew_sum_ms).label("skew_sum_ms"))
                .where(m.minute_ms >= since).group_by(m.minute_ms).order_by(m.minute_ms))
    df["lag_mean_ms"] = -df["skew_sum_ms"].astype(float) / df["reads"].astype(float)
    return df[["minute_ms", "reads", "lag_mean_ms"]]


def report(repo, site, now: datetime, *, silent_after_s: float, low_battery_pct: float) -> HealthReport:
    return HealthReport(silent_readers(repo, site, now, silent_after_s), low_battery(repo, site, low_battery_pct),
                        clock_skew(repo, now), ingest_rate(repo, now), repo.feed_stats())


def _frame(repo, stmt) -> pd.DataFrame:
    return read_frame(repo.engine, stmt, "reader health")
