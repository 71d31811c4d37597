"""The foundation pipeline end to end on the sample site: simulator → validate → locate → presence → store."""
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.feeds.simulator import HospitalSimulator
from core.history import trail, where_at
from core.ingest import Registry, validate
from core.locate import locate_reads
from core.services import build_pipeline
from core.snapshot import build_floor_snapshot
from core.storage import schema as s
from core.storage.repository import Repository
from sqlalchemy import Integer, select

from tests.helpers import T0, run_feed, sample_site

SITE = sample_site()


@pytest.fixture
def repo():
    r = Repository.from_url("sqlite://")
    r.create_schema()
    r.load_site(SITE)
    return r


def test_simulator_emits_both_read_shapes_with_drops():
    sim = HospitalSimulator(SITE, seed=5, fault_rate=0.0)
    raw = sim.step(T0)
    tracked = len(SITE.tags) - int((~SITE.on_duty(T0)).sum())
    assert raw["reader_id"].notna().any() and raw["x_m"].notna().any()
    assert 0.85 * tracked < len(raw) < tracked, "about 5 % of reads are dropped"


def test_motion_is_realistic():
    sim = HospitalSimulator(SITE, seed=11, fault_rate=0.0)
    reg = Registry.from_site(SITE)
    rooms_seen, bed_hits, moved = {}, [], None
    start = None
    for k in range(240):
        now = T0 + timedelta(seconds=k)
        loc = locate_reads(validate(sim.step(now), reg, now).accepted, SITE)
        if start is None:
            start = sim.pos.copy()
        pos = loc[loc["x_m"].notna()]
        staff = pos[pos["tag_id"].isin(SITE.tags.merge(SITE.entities)[lambda d: d.kind == "staff"]["tag_id"])]
        for t, r in zip(staff["tag_id"], staff["room_id"]):
            rooms_seen.setdefault(t, set()).add(r)
        pats = pos.merge(SITE.tags).merge(SITE.entities)[lambda d: d.kind == "patient"]
        bed_hits.append((pats["bed_id"] == pats["home_id"]).mean())
    inside = loc["room_id"].notna().mean()
    assert inside > 0.97, "positions fall inside rooms or corridors, not in walls or outside"
    assert np.mean(bed_hits) > 0.8, "patients are mostly in their own bed"
    walkers = sum(1 for r in rooms_seen.values() if len(r) >= 3)
    assert walkers >= 5, "staff walk between rooms along corridors"
    corridor_visits = sum(1 for r in rooms_seen.values() if any(x and x.endswith("-COR") for x in r))
    assert corridor_visits >= 5


def test_pipeline_stores_presence_history_and_quarantine(repo):
    run_feed(repo, SITE, 90, fault_rate=0.02)
    p = repo.presence()
    on_duty_staff = int(SITE.on_duty(T0).sum())
    assert len(p) >= 140 + on_duty_staff - 5
    assert p["room_id"].notna().mean() > 0.95
    assert repo.table_count(s.presence_changes) >= len(p)
    q = repo.quarantine_summary()
    reasons = " ".join(q["reason"])
    assert "unknown tag" in reasons and "duplicate read" in reasons
    stats = repo.feed_stats().iloc[0]
    assert stats["accepted"] > 90 * 150 and stats["quarantined"] == q["count"].sum()


def test_redelivered_batch_is_stored_once(repo):
    pipe = build_pipeline(SITE, repo, Settings())
    raw = HospitalSimulator(SITE, seed=2, fault_rate=0.0).step(T0)
    pipe.process(raw, T0)
    n = repo.table_count(s.raw_reads)
    pipe.process(raw, T0 + timedelta(seconds=1))
    assert repo.table_count(s.raw_reads) == n


def test_restart_keeps_since(repo):
    run_feed(repo, SITE, 30)
    before = repo.presence().set_index("tag_id")["since_ms"]
    pipe = build_pipeline(SITE, repo, Settings())            # a new process reading the same store
    snap = pipe.tracker.snapshot().set_index("tag_id")["since_ms"]
    assert snap.reindex(before.index).equals(before)


def test_snapshot_states_and_history(repo):
    run_feed(repo, SITE, 60)
    cfg = Settings()
    snap = build_floor_snapshot(repo, SITE, "F1", T0 + timedelta(seconds=60), stale_after_s=cfg.stale_after_s,
                                unknown_after_s=cfg.unknown_after_s)
    assert (snap.markers["state"] == "present").mean() > 0.9
    later = build_floor_snapshot(repo, SITE, "F1", T0 + timedelta(seconds=200), stale_after_s=30, unknown_after_s=300)
    assert (later.markers["state"] == "stale").all()
    patient = SITE.patients.iloc[0]
    place = where_at(repo, patient["patient_id"], T0 + timedelta(seconds=30))
    assert place.known and place.bed_id == patient["bed_id"]
    assert not where_at(repo, patient["patient_id"], T0 - timedelta(hours=1)).known
    tr = trail(repo, "S002", T0 - timedelta(seconds=1), T0 + timedelta(seconds=60))
    assert len(tr) >= 1 and (tr["duration_s"] >= 0).all()


def test_identity_hidden_on_request(repo):
    run_feed(repo, SITE, 5)
    snap = build_floor_snapshot(repo, SITE, None, T0 + timedelta(seconds=5), stale_after_s=30, unknown_after_s=300,
                                show_identity=False)
    pats = snap.markers[snap.markers["kind"] == "patient"]
    full = set(SITE.patients["given"] + " " + SITE.patients["family"])
    assert not (set(pats["label"]) | set(pats["name"])) & full


def _stored(r: Repository) -> dict:
    keys = {s.raw_reads: ["tag_id", "ts_ms", "origin"], s.presence: ["tag_id"],
            s.presence_changes: ["tag_id", "ts_ms"], s.quarantine: ["received_ms", "reason", "raw"]}
    out = {}
    for table, by in keys.items():
        auto = [c.name for c in table.primary_key.columns if c.autoincrement is True or
                (c.autoincrement == "auto" and isinstance(c.type, Integer))]
        df = r._frame(select(table)).drop(columns=auto)
        out[table.name] = df.sort_values(by, kind="stable").reset_index(drop=True)
    return out


def test_async_store_stores_exactly_what_the_synchronous_path_stores(tmp_path):
    from core.pipeline import Pipeline
    stored = []
    for async_store in (False, True):
        r = Repository.from_url(f"sqlite:///{tmp_path}/{async_store}.db")
        r.create_schema()
        r.load_site(SITE)
        pipe = Pipeline(SITE, r, Settings(), async_store=async_store)
        sim = HospitalSimulator(SITE, seed=4, fault_rate=0.02)
        for k in range(8):
            now = T0 + timedelta(seconds=k)
            pipe.process(sim.step(now), now)
        assert (pipe._writer is not None) == async_store
        pipe.flush()
        pipe.close()
        stored.append(_stored(r))
    for name, df in stored[0].items():
        assert len(df), name
        pd.testing.assert_frame_equal(df, stored[1][name], obj=name)


def test_async_store_failure_surfaces_on_the_next_call_and_later_ticks_still_commit(tmp_path, monkeypatch):
    from core.errors import StorageError
    from core.pipeline import Pipeline
    repo = Repository.from_url(f"sqlite:///{tmp_path}/w.db")
    repo.create_schema()
    repo.load_site(SITE)
    pipe = Pipeline(SITE, repo, Settings(), async_store=True)
    sim = HospitalSimulator(SITE, seed=4, fault_rate=0.0)
    real, calls = repo.write_tick, []

    def flaky(**job):
        calls.append(job["now"])
        if len(calls) == 1:
            raise StorageError("disk full")
        real(**job)
    monkeypatch.setattr(repo, "write_tick", flaky)
    pipe.process(sim.step(T0), T0)
    pipe._writer._queue.join()                       # the failed write has happened
    with pytest.raises(StorageError, match="disk full"):
        pipe.process(sim.step(T0 + timedelta(seconds=1)), T0 + timedelta(seconds=1))
    now = T0 + timedelta(seconds=2)
    pipe.process(sim.step(now), now)
    pipe.flush()                                     # no error left: reported once
    assert repo.table_count(s.presence) > 0 and calls[-1] == now
    pipe.close()
