"""Persistence of alarms and their audit events (SQLAlchemy Core on the shared metadata).

Times are BIGINT epoch ms like every Wardsight table; details and drug ids are JSON text so the
same schema works on SQLite and PostgreSQL. `alarm_events` is append-only: it is the audit trail
of every transition (who acknowledged what, when).
"""
from __future__ import annotations

import json
from dataclasses import fields
from typing import Iterable

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from core.alarms.engine import OPEN_STATES, Alarm, AlarmEvent
from core.errors import StorageError
from core.models import from_ms, to_ms
from core.storage.schema import metadata

alarms = Table(
    "alarms", metadata,
    Column("alarm_id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("key", String(200), nullable=False),
    Column("source", String(40)),
    Column("priority", String(10), nullable=False),
    Column("state", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("ward_id", String(64)), Column("room_id", String(64)), Column("bed_id", String(64)),
    Column("floor_id", String(64)), Column("x_m", Float), Column("y_m", Float),
    Column("patient_id", String(64)), Column("bin_id", String(64)), Column("location_id", String(64)),
    Column("subject_id", String(64)),
    Column("drug_ids", Text), Column("details", Text), Column("ladder", Text),
    Column("raised_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger),
    Column("acknowledged_by", String(64)), Column("acknowledged_ms", BigInteger),
    Column("resolved_by", String(64)), Column("resolved_ms", BigInteger),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("escalated_to_role", String(40)),
    Column("level_since_ms", BigInteger),
    Column("nearest_responder", String(64)),
    Index("ix_alarms_state", "state"),
    Index("ix_alarms_key", "key"),
)

alarm_events = Table(
    "alarm_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("detail", Text),
    Index("ix_alarm_events_alarm", "alarm_id", "ts_ms"),
)

_TIME_FIELDS = {"raised_at": "raised_ms", "last_seen_at": "last_seen_ms", "acknowledged_at": "acknowledged_ms",
                "resolved_at": "resolved_ms", "level_since": "level_since_ms"}
_JSON_FIELDS = ("drug_ids", "details", "ladder")


def _ms(ts) -> int | None:
    return None if ts is None else to_ms(ts)


def alarm_to_row(a: Alarm) -> dict:
    row = {}
    for f in fields(Alarm):
        v = getattr(a, f.name)
        if f.name in _TIME_FIELDS:
            row[_TIME_FIELDS[f.name]] = _ms(v)
        elif f.name in _JSON_FIELDS:
            row[f.name] = json.dumps(list(v) if isinstance(v, tuple) else dict(v), default=str)
        else:
            row[f.name] = v
    return row


def row_to_alarm(row) -> Alarm:
    m = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    kw = {}
    for f in fields(Alarm):
        if f.name in _TIME_FIELDS:
            kw[f.name] = from_ms(m[_TIME_FIELDS[f.name]])
        elif f.name in _JSON_FIELDS:
            v = json.loads(m[f.name]) if m[f.name] else None
            kw[f.name] = dict(v or {}) if f.name == "details" else tuple(v or ())
        else:
            kw[f.name] = m[f.name]
    return Alarm(**kw)


def save_alarms(conn: Connection, items: Iterable[Alarm]) -> int:
    """Upsert alarms by id (dialect-neutral: update the known ids, insert the rest)."""
    rows = [alarm_to_row(a) for a in items]
    if not rows:
        return 0
    try:
        ids = [r["alarm_id"] for r in rows]
        known = set(conn.execute(select(alarms.c.alarm_id).where(alarms.c.alarm_id.in_(ids))).scalars())
        fresh = [r for r in rows if r["alarm_id"] not in known]
        if fresh:
            conn.execute(insert(alarms), fresh)
        for r in rows:
            if r["alarm_id"] in known:
                conn.execute(update(alarms).where(alarms.c.alarm_id == r["alarm_id"]).values(**r))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot save alarms: {exc}") from exc
    return len(rows)


def save_events(conn: Connection, events: Iterable[AlarmEvent]) -> int:
    rows = [{"alarm_id": e.alarm_id, "ts_ms": to_ms(e.ts), "from_state": e.from_state, "to_state": e.to_state,
             "actor": e.actor, "detail": e.detail} for e in events]
    if rows:
        try:
            conn.execute(insert(alarm_events), rows)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot save alarm events: {exc}") from exc
    return len(rows)


def load_active(conn: Connection) -> list[Alarm]:
    """Open alarms (active, acknowledged, cleared_unack) to restore an AlarmEngine after restart."""
    try:
        rows = conn.execute(select(alarms).where(alarms.c.state.in_(sorted(OPEN_STATES)))
                            .order_by(alarms.c.raised_ms, alarms.c.alarm_id)).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot load alarms: {exc}") from exc
    return [row_to_alarm(r) for r in rows]


def load_events(conn: Connection, alarm_id: str | None = None) -> list[AlarmEvent]:
    q = select(alarm_events).order_by(alarm_events.c.ts_ms, alarm_events.c.id)
    if alarm_id is not None:
        q = q.where(alarm_events.c.alarm_id == alarm_id)
    try:
        rows = conn.execute(q).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot load alarm events: {exc}") from exc
    return [AlarmEvent(r.alarm_id, from_ms(r.ts_ms), r.from_state, r.to_state, r.actor, r.detail) for r in rows]


# ---------------------------------------------------------------- sensor data kept for charts
# Append-only reading tables are indexed by (subject, ts_ms) and purged by age (`purge_readings`);
# the *_state tables hold one row per bin / drug / item (the current picture, restored on restart).
env_readings = Table(
    "env_readings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("sensor_id", String(64)),
    Column("temp_c", Float), Column("rh_pct", Float), Column("door_open", Integer), Column("lux", Float),
    Index("ix_env_readings_loc_ts", "location_id", "ts_ms"),
    Index("ix_env_readings_ts", "ts_ms"),
)

vital_readings = Table(
    "vital_readings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("source", String(20)),
    Column("resp_rate", Float), Column("spo2", Float), Column("on_oxygen", Integer), Column("systolic_bp", Float),
    Column("pulse", Float), Column("consciousness", String(2)), Column("temp_c", Float),
    Column("glucose_mmol_l", Float), Column("spo2_scale", Integer),
    Column("news2_total", Integer), Column("news2_risk", String(12)), Column("monitoring", String(12)),
    Column("status", String(12), nullable=False),     # scored / incomplete / impossible / glucose
    Column("reason", Text),
    Index("ix_vital_readings_patient_ts", "patient_id", "ts_ms"),
    Index("ix_vital_readings_ts", "ts_ms"),
)

waste_events = Table(
    "waste_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("category", String(20)), Column("event", String(20), nullable=False),
    Column("bin_id", String(64)), Column("room_id", String(64)), Column("floor_id", String(64)),
    Column("x_m", Float), Column("y_m", Float), Column("handler", String(64)),
    Index("ix_waste_events_ts", "ts_ms"),
)

waste_bin_state = Table(
    "waste_bin_state", metadata,
    Column("bin_id", String(64), primary_key=True),
    Column("fill_pct", Float), Column("opened_ms", BigInteger), Column("updated_ms", BigInteger),
)

waste_item_state = Table(
    "waste_item_state", metadata,
    Column("item_id", String(64), primary_key=True),
    Column("category", String(20)), Column("bin_id", String(64)), Column("room_id", String(64)),
    Column("generated_ms", BigInteger), Column("seen_ms", BigInteger),
)

drug_positions = Table(
    "drug_positions", metadata,
    Column("drug_id", String(64), primary_key=True),
    Column("location_id", String(64)), Column("since_ms", BigInteger), Column("seen_ms", BigInteger),
)

sensor_rejects = Table(
    "sensor_rejects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("stream", String(12), nullable=False),
    Column("source_id", String(64)),
    Column("reason", Text, nullable=False),
    Column("raw", Text),
    Index("ix_sensor_rejects_ts", "ts_ms"),
)

READING_TABLES = (env_readings, vital_readings, waste_events, sensor_rejects)


def load_alarm(conn: Connection, alarm_id: str) -> Alarm | None:
    try:
        row = conn.execute(select(alarms).where(alarms.c.alarm_id == alarm_id)).first()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot load alarm: {exc}") from exc
    return None if row is None else row_to_alarm(row)
