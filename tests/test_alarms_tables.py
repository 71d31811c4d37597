"""Alarms and their audit events survive a round trip through the database (in-memory SQLite)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.alarms.engine import AlarmEngine
from core.alarms.tables import load_active, load_events, save_alarms, save_events
from core.storage.engine import make_engine
from core.storage.schema import metadata

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def conn():
    eng = make_engine("sqlite://")
    metadata.create_all(eng)
    with eng.begin() as c:
        yield c


def _engine_with_alarms():
    eng = AlarmEngine()
    eng.evaluate([{"kind": "storage.excursion", "location_id": "fridge-1", "drug_ids": ("insulin", "mmr"),
                   "details": {"max_temp_c": 9.5}, "floor_id": "F1", "x_m": 1.5, "y_m": 2.0},
                  {"kind": "vitals.news2", "patient_id": "p1", "priority": "high"},
                  {"kind": "tag.low_battery", "subject_id": "t9"}], T0)
    return eng


def test_round_trip_restores_identical_open_alarms(conn):
    eng = _engine_with_alarms()
    news = next(a for a in eng.open_alarms() if a.kind == "vitals.news2")
    eng.acknowledge(news.alarm_id, "nurse-7", T0 + timedelta(seconds=5))
    save_alarms(conn, eng.alarms.values())
    restored = {a.alarm_id: a for a in load_active(conn)}
    assert restored == {a.alarm_id: a for a in eng.open_alarms()}


def test_resolved_alarms_are_not_loaded_and_upsert_updates(conn):
    eng = _engine_with_alarms()
    save_alarms(conn, eng.alarms.values())
    tag = next(a for a in eng.open_alarms() if a.kind == "tag.low_battery")
    eng.resolve(tag.alarm_id, "tech", T0 + timedelta(seconds=9))
    assert save_alarms(conn, eng.alarms.values()) == 3
    assert {a.kind for a in load_active(conn)} == {"storage.excursion", "vitals.news2"}


def test_restored_engine_keeps_deduplicating(conn):
    eng = _engine_with_alarms()
    save_alarms(conn, eng.alarms.values())
    fresh = AlarmEngine()
    fresh.restore(load_active(conn))
    res = fresh.evaluate([{"kind": "storage.excursion", "location_id": "fridge-1"}], T0 + timedelta(seconds=60),
                         scope=["storage."])
    assert res.events == () and len(fresh.alarms) == 3


def test_events_are_an_append_only_audit_trail(conn):
    eng = _engine_with_alarms()
    news = next(a for a in eng.open_alarms() if a.kind == "vitals.news2")
    eng.acknowledge(news.alarm_id, "nurse-7", T0 + timedelta(seconds=5))
    assert save_events(conn, eng.drain_events()) == 4
    trail = load_events(conn, news.alarm_id)
    assert [(e.from_state, e.to_state, e.actor) for e in trail] == [(None, "active", "system"),
                                                                    ("active", "acknowledged", "nurse-7")]
    assert trail[1].ts == T0 + timedelta(seconds=5)
