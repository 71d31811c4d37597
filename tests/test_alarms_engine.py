"""Alarm lifecycle: latching, de-duplication, hold time, ack/resolve, escalation, help requests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import pandas as pd
import pytest

from core.alarms.engine import AlarmEngine, InvalidTransition, UnknownAlarm, nearest_responder, Alarm
from core.alarms.rules import ALARM_RULES, rules_table
from core.errors import WardsightError

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


@pytest.fixture
def engine():
    ids = count(1)
    return AlarmEngine(id_factory=lambda: f"A{next(ids)}")


FRIDGE = {"kind": "storage.excursion", "location_id": "fridge-1", "priority": "medium", "message": "fridge 9.1 °C",
          "floor_id": "F1", "x_m": 0.0, "y_m": 0.0, "drug_ids": ("insulin",)}
HOLD = ALARM_RULES["storage.excursion"].hold_s

STAFF = pd.DataFrame([
    ("n-far", "nurse", "F1", 50.0, 0.0, True),
    ("n-near", "nurse", "F1", 3.0, 4.0, True),
    ("n-off", "nurse", "F1", 0.5, 0.0, False),
    ("n-other-floor", "nurse", "F2", 0.0, 0.1, True),
    ("cn-1", "charge_nurse", "F1", 10.0, 0.0, True),
    ("wm-1", "ward_manager", "F2", 0.0, 0.0, True),
], columns=["staff_id", "role", "floor_id", "x_m", "y_m", "on_duty"])


def test_persisting_condition_is_one_alarm(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.evaluate([FRIDGE, FRIDGE], at(10))
    engine.evaluate(pd.DataFrame([FRIDGE]), at(20))
    assert len(engine.alarms) == 1
    (a,) = engine.open_alarms()
    assert a.state == "active" and a.key == "storage.excursion:fridge-1" and a.last_seen_at == at(20)


def test_cleared_unacknowledged_is_latched_until_ack(engine):
    engine.evaluate([FRIDGE], at(0))
    assert engine.evaluate([], at(HOLD - 1)).events == ()          # within hold time: still active
    ev = engine.evaluate([], at(HOLD + 1)).events
    assert [(e.from_state, e.to_state) for e in ev] == [("active", "cleared_unack")]
    e = engine.acknowledge("A1", "nurse-7", at(HOLD + 5))
    assert (e.from_state, e.to_state, e.actor) == ("cleared_unack", "resolved", "nurse-7")
    assert engine.get("A1").acknowledged_by == "nurse-7" and engine.open_alarms() == []


def test_acknowledged_alarm_resolves_when_condition_clears(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.acknowledge("A1", "nurse-7", at(5))
    engine.evaluate([FRIDGE], at(100))
    ev = engine.evaluate([], at(100 + HOLD)).events
    assert [(e.from_state, e.to_state) for e in ev] == [("acknowledged", "resolved")]
    assert engine.get("A1").resolved_at == at(100 + HOLD)


def test_condition_returning_while_latched_reactivates_same_alarm(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.evaluate([], at(HOLD + 1))
    ev = engine.evaluate([FRIDGE], at(HOLD + 2)).events
    assert [(e.alarm_id, e.from_state, e.to_state) for e in ev] == [("A1", "cleared_unack", "active")]


def test_condition_after_resolution_is_a_new_alarm(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.resolve("A1", "pharm-1", at(1))
    ev = engine.evaluate([FRIDGE], at(2)).events
    assert [(e.alarm_id, e.from_state, e.to_state) for e in ev] == [("A2", None, "active")]


def test_worsening_re_alarms_an_acknowledged_alarm(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.acknowledge("A1", "nurse-7", at(5))
    ev = engine.evaluate([{**FRIDGE, "priority": "high"}], at(10)).events
    assert [(e.from_state, e.to_state) for e in ev] == [("acknowledged", "active")]
    assert engine.get("A1").priority == "high" and engine.get("A1").escalation_level == 0


INVALID = [("acknowledge", "resolved"), ("resolve", "resolved"), ("acknowledge", "acknowledged")]


@pytest.mark.parametrize("op,state", INVALID, ids=[f"{o}-{s}" for o, s in INVALID])
def test_invalid_transitions_raise(engine, op, state):
    engine.evaluate([FRIDGE], at(0))
    engine.acknowledge("A1", "u", at(1))
    if state == "resolved":
        engine.resolve("A1", "u", at(2))
    with pytest.raises(InvalidTransition) as exc:
        getattr(engine, op)("A1", "u", at(3))
    assert isinstance(exc.value, WardsightError) and state in str(exc.value)


def test_unknown_alarm_id(engine):
    with pytest.raises(UnknownAlarm):
        engine.acknowledge("nope", "u", at(0))


def test_bad_conditions_are_rejected_with_reason_not_dropped(engine):
    res = engine.evaluate([{"kind": "storage.nonsense", "location_id": "x"},
                           {**FRIDGE, "priority": "urgent"}, FRIDGE], at(0))
    assert [r["reason"][:20] for r in res.rejected] == ["unknown alarm kind '", "priority 'urgent' is"]
    assert len(res.events) == 1


def test_scope_limits_clearing_to_evaluated_kinds(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.evaluate([], at(HOLD * 2), scope=["vitals."])
    assert engine.get("A1").state == "active"


def test_naive_now_is_refused(engine):
    with pytest.raises(ValueError):
        engine.evaluate([FRIDGE], datetime(2025, 1, 1))


ESCALATION = [  # priority, seconds unacknowledged, expected (level, role)
    ("high", 29, (0, "nurse")), ("high", 30, (1, "charge_nurse")), ("high", 90, (2, "ward_manager")),
    ("medium", 59, (0, "nurse")), ("medium", 60, (1, "charge_nurse")), ("medium", 10_000, (1, "charge_nurse")),
    ("low", 120, (1, "charge_nurse")),
]


@pytest.mark.parametrize("prio,secs,expected", ESCALATION, ids=[f"{p}-{s}s" for p, s, _ in ESCALATION])
def test_escalation_ladder(engine, prio, secs, expected):
    engine.evaluate([{"kind": "vitals.news2", "patient_id": "p1", "priority": prio}], at(0))
    engine.tick(at(secs))
    a = engine.get("A1")
    assert (a.escalation_level, a.escalated_to_role) == expected


def test_acknowledged_alarm_does_not_escalate(engine):
    engine.evaluate([{"kind": "vitals.news2", "patient_id": "p1", "priority": "high"}], at(0))
    engine.acknowledge("A1", "n", at(10))
    assert engine.tick(at(500)) == [] and engine.get("A1").escalation_level == 0


def test_escalation_picks_nearest_of_new_role(engine):
    engine.evaluate([{**FRIDGE, "kind": "vitals.news2", "patient_id": "p1", "priority": "high"}], at(0), STAFF)
    assert engine.get("A1").nearest_responder == "n-near"
    engine.tick(at(31), STAFF)
    assert engine.get("A1").nearest_responder == "cn-1"


NEAREST = [("nurse", "F1", "n-near"), ("nurse", "F2", "n-other-floor"), ("ward_manager", "F1", "wm-1"),
           ("porter", "F1", None)]


@pytest.mark.parametrize("role,floor,expected", NEAREST, ids=[f"{r}@{f}" for r, f, _ in NEAREST])
def test_nearest_responder_prefers_same_floor_and_skips_off_duty(role, floor, expected):
    alarm = Alarm("x", "help.request", "k", "high", "m", T0, floor_id=floor, x_m=0.0, y_m=0.0)
    assert nearest_responder(alarm, STAFF, role) == expected


def test_help_request_flow(engine):
    room = {"room_id": "R12", "floor_id": "F1", "x_m": 0.0, "y_m": 0.0, "ward_id": "W1"}
    alarm, ev = engine.request_help("nurse", room, "n-near", at(0), STAFF)
    assert alarm.kind == "help.request" and alarm.nearest_responder == "n-far"   # requester excluded
    again, ev2 = engine.request_help("nurse", room, "n-near", at(5), STAFF)
    assert again.alarm_id == alarm.alarm_id and ev2 == []
    engine.decline_help(alarm.alarm_id, "n-far", at(6), STAFF)
    assert engine.get(alarm.alarm_id).nearest_responder == "n-other-floor"
    engine.evaluate([], at(1000))                                   # not condition-driven: never auto-clears
    engine.tick(at(31), STAFF)
    assert engine.get(alarm.alarm_id).escalated_to_role == "charge_nurse"
    e = engine.accept_help(alarm.alarm_id, "cn-1", at(40))
    assert (e.to_state, e.actor) == ("acknowledged", "cn-1")


def test_inbox_orders_unacknowledged_high_first(engine):
    engine.evaluate([FRIDGE, {"kind": "vitals.news2", "patient_id": "p1", "priority": "high"},
                     {"kind": "tag.low_battery", "subject_id": "t1"}], at(0))
    engine.acknowledge("A2", "n", at(1))
    assert list(engine.inbox()["kind"]) == ["storage.excursion", "tag.low_battery", "vitals.news2"]


def test_every_transition_is_an_event(engine):
    engine.evaluate([FRIDGE], at(0))
    engine.tick(at(61))
    engine.acknowledge("A1", "u", at(62))
    engine.evaluate([], at(62 + HOLD))
    assert [(e.from_state, e.to_state) for e in engine.drain_events()] == [
        (None, "active"), ("active", "active"), ("active", "acknowledged"), ("acknowledged", "resolved")]
    assert engine.events == []


def test_registry_covers_every_kind_in_the_brief():
    kinds = {"vitals.news2", "vitals.red_score", "vitals.obs_overdue", "vitals.sensor_silent", "storage.excursion",
             "storage.sensor_silent", "storage.drug_misplaced", "waste.wrong_bin", "waste.wrong_place",
             "waste.overdue", "location.geofence", "location.duress", "tag.low_battery", "tag.silent",
             "security.cloned_tag", "help.request"}
    assert kinds <= set(rules_table()["kind"])
