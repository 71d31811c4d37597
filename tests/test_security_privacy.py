"""Staff privacy filter, 'what we know about me', retention purge and patient opt-outs."""
from __future__ import annotations

import os

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import insert, select

import core.security.tables  # noqa: F401
from core.errors import AccessDenied, InvalidInput
from core.models import to_ms
from core.security import audit, privacy
from core.security.tables import staff_presence_hourly
from core.storage.engine import make_engine
from core.storage.schema import entities, metadata, presence_changes, raw_reads, rooms, tags

DAY0 = datetime(2025, 3, 4, 0, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def ms(dt):
    return to_ms(dt)


# ---- filter_trackable ----------------------------------------------------------------------------------
SHIFTS = pd.DataFrame({"staff_id": ["S1", "S2"], "start_ms": [ms(DAY0 + 7 * H), ms(DAY0 + 19 * H)],
                       "end_ms": [ms(DAY0 + 19 * H), ms(DAY0 + 31 * H)]})


def reads(rows):
    return pd.DataFrame(rows, columns=["ts", "entity_id", "kind", "room_id"])


@pytest.mark.parametrize("row, kept, reason", [
    ((DAY0 + 8 * H, "S1", "staff", "bay1"), True, None),
    ((DAY0 + 6 * H, "S1", "staff", "bay1"), False, privacy.OFF_DUTY),        # before shift
    ((DAY0 + 19 * H, "S1", "staff", "bay1"), False, privacy.OFF_DUTY),       # shift end is exclusive
    ((DAY0 + 8 * H, "S1", "staff", "staffroom"), False, privacy.PRIVACY_ZONE),
    ((DAY0 + 6 * H, "S1", "staff", "wc1"), False, privacy.PRIVACY_ZONE),     # counted once, as privacy
    ((DAY0 + 8 * H, "S9", "staff", "bay1"), False, privacy.OFF_DUTY),        # no shift at all
    ((DAY0 + 6 * H, "P1", "patient", "wc1"), True, None),                    # patients are not filtered here
    ((DAY0 + 6 * H, "D1", "device", "bay1"), True, None),
], ids=["on-duty", "before-shift", "at-shift-end", "staff-room", "toilet-off-duty", "unrostered",
        "patient", "device"])
def test_filter_trackable(row, kept, reason):
    result = privacy.filter_trackable(reads([row]), SHIFTS, {"staffroom", "wc1"}, DAY0)
    assert (len(result.kept) == 1) is kept
    expected = {privacy.OFF_DUTY: 0, privacy.PRIVACY_ZONE: 0}
    if reason:
        expected[reason] = 1
    assert result.withheld == expected


def test_filter_trackable_vectorised_mix_keeps_order_and_counts():
    frame = reads([(DAY0 + 8 * H, "S1", "staff", "bay1"), (DAY0 + 20 * H, "S2", "staff", "bay2"),
                   (DAY0 + 20 * H, "S1", "staff", "bay2"), (DAY0 + 9 * H, "P1", "patient", "bay1"),
                   (DAY0 + 20 * H, "S2", "staff", "wc1")])
    result = privacy.filter_trackable(frame, SHIFTS, ["wc1"], DAY0)
    assert result.kept.index.tolist() == [0, 1, 3] and result.withheld_total == 2


def test_presence_snapshot_judged_at_now_and_grace():
    snapshot = pd.DataFrame({"entity_id": ["S1", "S2"], "room_id": ["bay1", "bay2"]})
    now = DAY0 + 7 * H - 5 * M                           # S1 arriving five minutes early
    strict = privacy.filter_trackable(snapshot, SHIFTS, [], now, staff_ids={"S1", "S2"})
    assert strict.kept.empty
    lenient = privacy.filter_trackable(snapshot, SHIFTS, [], now, staff_ids={"S1", "S2"}, grace_s=600)
    assert lenient.kept["entity_id"].tolist() == ["S1"]


def test_filter_needs_a_way_to_recognise_staff():
    with pytest.raises(InvalidInput):
        privacy.filter_trackable(pd.DataFrame({"entity_id": ["S1"], "room_id": ["a"]}), SHIFTS, [], DAY0)


# ---- purge -----------------------------------------------------------------------------------------------
@pytest.fixture
def engine():
    eng = make_engine("sqlite://")
    metadata.create_all(eng)
    with eng.begin() as conn:
        conn.execute(insert(entities), [
            {"entity_id": "S1", "kind": "staff", "name": "Sam"}, {"entity_id": "S2", "kind": "staff", "name": "Kim"},
            {"entity_id": "P1", "kind": "patient", "name": "Pat"}])
        conn.execute(insert(tags), [{"tag_id": "TS1", "entity_id": "S1", "active": True},
                                    {"tag_id": "TS2", "entity_id": "S2", "active": True},
                                    {"tag_id": "TP1", "entity_id": "P1", "active": True}])
        conn.execute(insert(rooms), [{"room_id": r, "floor_id": "F1", "ward_id": "W1", "name": r, "room_type": "bay"}
                                     for r in ("A", "B", "C")])
    return eng


def change(tag, entity, ts, room):
    return {"tag_id": tag, "entity_id": entity, "ts_ms": ms(ts), "floor_id": "F1", "room_id": room}


def hourly(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(staff_presence_hourly.c.room_id, staff_presence_hourly.c.hour_ms,
                                   staff_presence_hourly.c.staff_count, staff_presence_hourly.c.ward_id))
        return {(r.room_id, (r.hour_ms - ms(DAY0)) // 3_600_000): (r.staff_count, r.ward_id) for r in rows}


def changes(engine):
    with engine.connect() as conn:
        return [(r.entity_id, r.room_id, (r.ts_ms - ms(DAY0)) // 60_000)
                for r in conn.execute(select(presence_changes).order_by(presence_changes.c.ts_ms, presence_changes.c.tag_id))]


def test_purge_removes_only_old_rows_and_keeps_hourly_counts(engine):
    now = DAY0 + 27 * H + 20 * M                 # 24 h back is 03:20 -> cut at 03:00
    with engine.begin() as conn:
        conn.execute(insert(raw_reads), [{"tag_id": "TS1", "ts_ms": ms(now - timedelta(days=d)), "origin": "R1:1"}
                                         for d in (0, 6.9, 7.1, 30)])
        conn.execute(insert(presence_changes), [
            change("TS1", "S1", DAY0 + 10 * M, "A"), change("TS1", "S1", DAY0 + 90 * M, "B"),
            change("TS2", "S2", DAY0 + 50 * M, "A"), change("TS2", "S2", DAY0 + 55 * M, None),
            change("TP1", "P1", DAY0 + 5 * M, "C"),                         # patient: not purged here
            change("TS2", "S2", DAY0 + 4 * H, "C"),                         # newer than the cut: kept
        ])
    result = privacy.purge(engine, now, raw_read_days=7, staff_history_hours=24)
    assert result.raw_reads_deleted == 2                    # the 7.1- and 30-day-old reads
    assert result.staff_changes_deleted == 4 and result.carried_over == 1
    with engine.connect() as conn:
        assert sorted(conn.execute(select(raw_reads.c.ts_ms)).scalars()) == sorted(
            ms(now - timedelta(days=d)) for d in (0, 6.9))
    assert changes(engine) == [("P1", "C", 5), ("S1", "B", 180), ("S2", "C", 240)]
    assert hourly(engine) == {("A", 0): (2, "W1"), ("A", 1): (1, "W1"), ("B", 1): (1, "W1"), ("B", 2): (1, "W1")}
    assert audit.entries(engine)["action"].tolist() == ["retention_purge"]

    # a later run continues from the carried-over boundary row without double counting
    privacy.purge(engine, now + 3 * H, raw_read_days=7, staff_history_hours=24)
    assert hourly(engine) == {("A", 0): (2, "W1"), ("A", 1): (1, "W1"), ("B", 1): (1, "W1"), ("B", 2): (1, "W1"),
                              ("B", 3): (1, "W1"), ("B", 4): (1, "W1"), ("B", 5): (1, "W1"), ("C", 4): (1, "W1"),
                              ("C", 5): (1, "W1")}
    assert changes(engine) == [("P1", "C", 5), ("S1", "B", 360), ("S2", "C", 360)]
    assert audit.verify_chain(engine).ok


def test_purge_with_nothing_old_is_a_no_op(engine):
    result = privacy.purge(engine, DAY0, raw_read_days=7, staff_history_hours=24)
    assert result.to_dict() == {"raw_reads_deleted": 0, "staff_changes_deleted": 0, "hourly_rows_written": 0,
                                "carried_over": 0}


def test_purge_rejects_non_positive_periods(engine):
    with pytest.raises(InvalidInput):
        privacy.purge(engine, DAY0, raw_read_days=0, staff_history_hours=24)


def test_cli_purge(tmp_path):
    import json
    import subprocess
    import sys
    url = f"sqlite:///{tmp_path / 'p.db'}"
    eng = make_engine(url)
    metadata.create_all(eng)
    old = ms(datetime.now(timezone.utc) - timedelta(days=10))
    with eng.begin() as conn:
        conn.execute(insert(raw_reads), [{"tag_id": "T", "ts_ms": old, "origin": "o"},
                                         {"tag_id": "T", "ts_ms": old + 9 * 86_400_000, "origin": "o"}])
    out = subprocess.run([sys.executable, "-m", "core.security", "purge", "--db", url, "--older-than-days", "7"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["raw_reads_deleted"] == 1
    # with no options the settings decide: store and periods from the environment
    env = {**os.environ, "WARDSIGHT_DB_URL": url, "WARDSIGHT_RAW_RETENTION_DAYS": "0.5"}
    out = subprocess.run([sys.executable, "-m", "core.security", "purge"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["raw_reads_deleted"] == 1


# ---- what we know about me -------------------------------------------------------------------------------
def test_what_we_know_about_lists_holdings_and_viewers(engine):
    with engine.begin() as conn:
        conn.execute(insert(presence_changes), [change("TS1", "S1", DAY0 + i * M, "A") for i in range(3)])
        conn.execute(insert(raw_reads), [{"tag_id": "TS1", "ts_ms": ms(DAY0), "origin": "R1:1"}])
    audit.append(engine, ts=DAY0 + H, actor="mgr", role="manager", action="view_staff_trail", object_type="staff",
                 object_id="S1", reason="incident review 42")
    audit.append(engine, ts=DAY0 + H, actor="mgr", role="manager", action="view_staff_trail", object_type="staff",
                 object_id="S2", reason="other person")
    summary = privacy.what_we_know_about(engine, "S1", DAY0 + 2 * H, raw_read_days=7, staff_history_hours=336)
    held = summary.holdings.set_index("item")
    assert held.loc["movement history", "rows"] == 3 and held.loc["raw tag reads", "rows"] == 1
    assert held.loc["movement history", "oldest"] == DAY0 and "14 days" in held.loc["movement history", "retention"]
    assert summary.viewers[["actor", "reason"]].values.tolist() == [["mgr", "incident review 42"]]
    assert summary.viewers["ts"].iloc[0] == pd.Timestamp(DAY0 + H)


# ---- opt-outs ----------------------------------------------------------------------------------------------
def test_optout_recorded_audited_and_withdrawn(engine):
    assert not privacy.is_opted_out(engine, "P1")
    privacy.record_optout(engine, "P1", "nurse1", DAY0, "patient declined tracking", role="nurse")
    assert privacy.is_opted_out(engine, "P1") and privacy.opted_out_ids(engine) == {"P1"}
    privacy.withdraw_optout(engine, "P1", "nurse1", DAY0 + H, "patient agreed", role="nurse")
    assert not privacy.is_opted_out(engine, "P1")
    log = audit.entries(engine, patient_id="P1")
    assert log["action"].tolist() == ["tracking_optout_withdrawn", "tracking_optout"]
    with pytest.raises(AccessDenied):
        privacy.record_optout(engine, "P1", "fac1", DAY0, "x", role="facilities")
