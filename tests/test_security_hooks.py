"""Security hooks in the real pipeline: staff privacy, patient opt-out, cloned tags, hourly retention,
signed messages quarantined on the way in."""
from datetime import timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from core.alarms.engine import AlarmEngine
from core.config import Settings
from core.feeds.simulator import HospitalSimulator
from core.ingest import validate
from core.locate import locate_reads
from core.security import hooks, privacy, signing
from core.security.tables import audit_log, security_events
from core.services import build_pipeline
from core.snapshot import build_floor_snapshot
from core.storage.repository import Repository
from core.storage.schema import presence, quarantine, raw_reads
from tests.helpers import T0, sample_site

SITE = sample_site()
TAG = dict(zip(SITE.tags["entity_id"], SITE.tags["tag_id"]))


@pytest.fixture
def pipe(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'hooks.db'}")
    repo.create_schema()
    repo.load_site(SITE)
    return build_pipeline(SITE, repo, Settings())


def pos(entity: str, x: float, y: float, at, floor: str = "F1", dt_s: float = 0.5) -> dict:
    return {"ts": pd.Timestamp(at - timedelta(seconds=dt_s)), "tag_id": TAG[entity], "x_m": x, "y_m": y,
            "floor_id": floor}


def reader(entity: str, reader_id: str, at) -> dict:
    return {"ts": pd.Timestamp(at - timedelta(seconds=0.5)), "tag_id": TAG[entity], "reader_id": reader_id,
            "antenna": 1, "rssi_dbm": -55.0}


def stored_tags(pipe, table) -> set[str]:
    with pipe.repo.engine.connect() as conn:
        return set(conn.execute(select(table.c.tag_id)).scalars())


# T0 is 09:00 on a November weekday in London (UTC+0): S002 works days, S003 nights.
@pytest.mark.parametrize("read,reason", [
    (lambda: pos("S002", 22.5, 8.5, T0), None),                        # on duty, corridor
    (lambda: pos("S002", 34.5, 3.5, T0), privacy.PRIVACY_ZONE),         # staff room (position)
    (lambda: pos("S002", 38.5, 3.5, T0), privacy.PRIVACY_ZONE),         # staff toilet
    (lambda: reader("S002", "RD-WA-SR", T0), privacy.PRIVACY_ZONE),     # staff room reader
    (lambda: pos("S003", 22.5, 8.5, T0), privacy.OFF_DUTY),             # night nurse at 09:00
    (lambda: pos("P001", 34.5, 3.5, T0), None),                         # a patient is not staff
    (lambda: pos("P001", 2.0, 3.5, T0), None),
], ids=["on-duty-corridor", "staff-room", "staff-toilet", "staff-room-reader", "off-duty", "patient-in-staff-room",
        "patient-in-bed"])
def test_staff_privacy_through_the_pipeline(pipe, read, reason):
    row = read()
    res = pipe.process(pd.DataFrame([row]), T0)
    assert res.quarantined == 0                                    # withheld is policy, not bad data
    assert res.withheld == ({} if reason is None else {reason: 1})
    assert (row["tag_id"] in stored_tags(pipe, raw_reads)) == (reason is None)
    assert (row["tag_id"] in stored_tags(pipe, presence)) == (reason is None)


def test_privacy_zones_of_the_sample_site():
    shapes = hooks.privacy_zone_shapes(SITE)
    assert set(shapes) == {"F1", "F2"}
    rooms = hooks.privacy_room_ids(SITE, shapes)
    assert rooms == {"WA-SR", "WA-ST", "WB-SR", "WB-ST", "WC-SR", "WC-ST"}
    frame = pd.DataFrame({"floor_id": ["F1", "F1", "F2", None], "x_m": [34.5, 22.5, 38.5, 34.5],
                          "y_m": [3.5, 8.5, 3.5, 3.5]})
    assert hooks.in_zones(shapes, frame).tolist() == [True, False, True, False]


def test_opted_out_patient_is_never_stored_and_shown_paused(pipe):
    engine = pipe.repo.engine
    privacy.record_optout(engine, "P001", "nurse1", T0, "declined at admission", role="nurse")
    res = pipe.process(pd.DataFrame([pos("P001", 2.0, 3.5, T0), pos("P002", 6.0, 3.5, T0)]), T0)
    assert res.withheld == {hooks.OPTED_OUT: 1}
    assert TAG["P001"] not in stored_tags(pipe, raw_reads) | stored_tags(pipe, presence)
    assert TAG["P002"] in stored_tags(pipe, raw_reads)
    snap = build_floor_snapshot(pipe.repo, SITE, "F1", T0, stale_after_s=30, unknown_after_s=300, show_identity=False)
    assert "P001" not in set(snap.markers["entity_id"]) and "P002" in set(snap.markers["entity_id"])
    assert snap.paused[["entity_id", "bed_id", "label"]].values.tolist() == [["P001", "WA-S1-1", "J.N."]]
    log = pd.read_sql(select(audit_log.c.actor, audit_log.c.action, audit_log.c.ts_ms)
                      .where(audit_log.c.patient_id == "P001"), engine)
    assert log.values.tolist() == [["nurse1", "tracking_optout", int(T0.timestamp() * 1000)]]

    later = T0 + timedelta(seconds=1)
    privacy.withdraw_optout(engine, "P001", "nurse1", later, "patient agreed", role="nurse")
    res = pipe.process(pd.DataFrame([pos("P001", 2.0, 3.5, later)]), later)
    assert res.withheld == {} and TAG["P001"] in stored_tags(pipe, raw_reads)


def _clone_tick(at):
    """Two copies of one patient's tag: one in bay WA-B1, one 45 m away in WB-S2, read alternately."""
    return pd.DataFrame([pos("P003", 4.0, 13.5, at, dt_s=0.6), pos("P003", 51.0, 3.5, at, dt_s=0.2)])


def test_simulated_clone_becomes_a_security_event_and_an_alarm_condition(pipe):
    for k in range(3):          # 1 + 2 + 2 impossible hops: below the threshold of 6
        pipe.process(_clone_tick(T0 + timedelta(seconds=k)), T0 + timedelta(seconds=k))
    assert hooks.pending_clone_conditions(pipe, T0 + timedelta(seconds=3)) == []
    for k in range(3, 8):
        pipe.process(_clone_tick(T0 + timedelta(seconds=k)), T0 + timedelta(seconds=k))
    now = T0 + timedelta(seconds=7)
    with pipe.repo.engine.connect() as conn:
        events = conn.execute(select(security_events)).mappings().all()
    assert len(events) == 1                                        # one episode, extended each tick
    ev = events[0]
    assert ev["tag_id"] == TAG["P003"] and ev["entity_id"] == "P003" and ev["hops"] >= hooks.CLONE_MIN_HOPS
    assert {ev["place_a"], ev["place_b"]} == {"WA-B1", "WB-S2"} and ev["last_ms"] == int(now.timestamp() * 1000)
    conds = hooks.pending_clone_conditions(pipe, now)
    assert conds == hooks.pending_clone_conditions()           # defaults: this process's pipeline, its last tick
    assert [(c["kind"], c["priority"], c["subject_id"]) for c in conds] == [("security.cloned_tag", "high", TAG["P003"])]
    assert "Suspected cloned tag" in conds[0]["message"]
    result = AlarmEngine().evaluate(conds, now)                # the alarm inbox accepts the contract
    assert not result.rejected and [e.to_state for e in result.events] == ["active"]
    assert hooks.pending_clone_conditions(pipe, now + timedelta(seconds=hooks.CONDITION_S + 1)) == []


def test_normal_movement_raises_no_clone_event(pipe):
    """Two simulated minutes of a whole hospital (RTLS noise and outliers, stray reads from the next
    room's reader, lift rides) through the clone hook: not one suspected clone."""
    sim, security = HospitalSimulator(SITE, seed=11, fault_rate=0.0), pipe.security
    for k in range(120):
        now = T0 + timedelta(seconds=k)
        located = locate_reads(validate(sim.step(now), pipe.registry, now).accepted, SITE)
        security.clone_hook(SimpleNamespace(located=located), now)
    assert (security._hops["tag_id"].value_counts() < hooks.CLONE_MIN_HOPS).all()
    with pipe.repo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(security_events)).scalar() == 0


def test_retention_runs_on_first_tick_then_hourly(pipe):
    engine = pipe.repo.engine
    old = T0 - timedelta(days=8)
    with engine.begin() as conn:
        conn.execute(insert(raw_reads), [{"tag_id": TAG["P002"], "ts_ms": int(old.timestamp() * 1000), "origin": "rtls:F1"}])

    def purges() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_log)
                                .where(audit_log.c.action == "retention_purge")).scalar()

    for minutes, expected in [(0, 1), (10, 1), (59, 1), (61, 2), (100, 2)]:
        at = T0 + timedelta(minutes=minutes)
        pipe.process(pd.DataFrame([pos("P002", 6.0, 3.5, at)]), at)
        assert purges() == expected, minutes
    assert pipe.security.last_purge.raw_reads_deleted == 0       # the old read went at the first tick
    with engine.connect() as conn:
        assert conn.execute(select(func.min(raw_reads.c.ts_ms))).scalar() >= int(T0.timestamp() * 1000) - 1000


def test_tampered_signed_message_is_quarantined_on_the_way_in(pipe):
    engine = pipe.repo.engine
    signing.add_reader_key(engine, "GW-1", "k-gw-1")
    body = {"reader_id": "GW-1", "seq": 1, "ts": T0.isoformat(), "reads": [pos("P002", 6.0, 3.5, T0)]}
    body["reads"][0]["ts"] = body["reads"][0]["ts"].isoformat()
    good = signing.sign(body, "k-gw-1")
    forged = {**signing.sign({**body, "seq": 2}, "k-gw-1"), "reads": [{**body["reads"][0], "x_m": 51.0}]}
    accepted, bad = signing.verify_with_store(engine, [good, forged, good], T0, source="mqtt")
    assert [m["seq"] for m in accepted] == [1]
    assert bad["reason"].tolist() == [signing.BAD_SIGNATURE, signing.REPLAYED]
    res = pipe.process(pd.DataFrame([r for m in accepted for r in m["reads"]]), T0, source="mqtt",
                       extra_quarantine=bad)
    assert res.accepted == 1 and res.quarantined == 2
    with engine.connect() as conn:
        reasons = conn.execute(select(quarantine.c.reason).order_by(quarantine.c.reason)).scalars().all()
    assert reasons == [signing.BAD_SIGNATURE, signing.REPLAYED]
    assert signing.load_last_seq(engine) == {"GW-1": 1}
