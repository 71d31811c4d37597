"""core.bedside_service: bedside sessions from the real simulator through the real pipeline, checked
against the simulator's ground truth (true positions, no noise); stored rows; the demo badge hold."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import shapely

from core import bedside_service as bs
from core.bedside import assign_beds
from core.config import Settings
from core.errors import InvalidInput
from core.feeds.simulator import HospitalSimulator
from core.services import build_pipeline
from core.storage.repository import Repository
from tests.helpers import T0, position_read, sample_site

TICKS = 180
DWELL_S, EXIT_S, MARGIN_M = 5.0, 8.0, 0.5
TOL_S = 3.0          # read timestamps jitter by up to 0.4 s, 5 % of reads drop, positions carry 0.25 m noise
# The simulator's position noise is 0.25 m (1 sd). Reads go to the nearest bed, so a true position
# whose two nearest beds are within 2 × 0.125 m of each other in distance sends over 30 % of its reads
# to the other bed: no rule can tell those apart, and the oracle calls such moments ambiguous. A
# session is only "phantom" if the clinician was never within 2 sd of that bed's zone.
FLIP_M = 0.125
NEAR_M = MARGIN_M + 2 * 0.25
FAR = pd.Timestamp("2200-01-01", tz="UTC").as_unit("us")


def _repo() -> Repository:
    repo = Repository.from_url("sqlite://")
    repo.create_schema()
    repo.load_site(sample_site())
    return repo


@pytest.fixture(scope="module")
def world():
    """180 one-second ticks of the day shift: staff reads through build_pipeline (every feature
    installed), plus each tick's true staff positions from the simulator."""
    site, repo = sample_site(), _repo()
    pipe = build_pipeline(site, repo, Settings(), store_raw_reads=False)
    sim = HospitalSimulator(site, seed=5, fault_rate=0.002)
    staff = np.flatnonzero(sim.kind == "staff")
    staff_tags = set(sim.tag_id[staff])
    truth = []
    for k in range(TICKS):
        now = T0 + timedelta(seconds=k)
        raw = sim.step(now)
        on = sim._tracked(now)[staff]
        truth.append(pd.DataFrame({"ts": pd.Timestamp(now), "staff_id": sim.entity_id[staff][on],
                                   "x_m": sim.pos[staff][on, 0], "y_m": sim.pos[staff][on, 1],
                                   "floor_id": sim.floor_ids[sim.floor[staff][on]]}))
        pipe.process(raw[raw["tag_id"].isin(staff_tags) | ~raw["tag_id"].isin(set(sim.tag_id))], now)
    truth = pd.concat(truth, ignore_index=True)
    beds = bs.bed_polygons(site)
    truth["bed_id"] = assign_beds(truth, beds, MARGIN_M)
    dist = shapely.distance(shapely.points(truth["x_m"], truth["y_m"])[:, None], beds["geometry"].to_numpy()[None, :])
    dist[truth["floor_id"].to_numpy()[:, None] != beds["floor_id"].to_numpy()[None, :]] = np.inf
    near = np.sort(dist, axis=1)
    truth["ambiguous"] = truth["bed_id"].notna().to_numpy() & ((near[:, 1] - near[:, 0]) / 2 < FLIP_M)
    close = pd.DataFrame(dist <= NEAR_M, columns=beds["bed_id"])
    return site, repo, pipe, _visits(truth), bs.sessions(repo, T0 - timedelta(hours=1)), truth, close


def _visits(truth: pd.DataFrame) -> pd.DataFrame:
    """True visits: consecutive ticks of one clinician at one bed."""
    t = truth.sort_values(["staff_id", "ts"]).reset_index(drop=True)
    new = (t["staff_id"] != t["staff_id"].shift()) | (t["bed_id"].fillna("") != t["bed_id"].shift().fillna("")) | \
          (t["ts"].diff() > pd.Timedelta(seconds=1))
    runs = t.assign(run=new.cumsum()).dropna(subset=["bed_id"])
    return runs.groupby("run").agg(staff_id=("staff_id", "first"), bed_id=("bed_id", "first"), start=("ts", "min"),
                                   end=("ts", "max"), ambiguous=("ambiguous", "any")).reset_index(drop=True)


def _clear(visits: pd.DataFrame, min_s: float) -> pd.DataFrame:
    """Visits long enough and never ambiguous between two beds."""
    return visits[((visits["end"] - visits["start"]).dt.total_seconds() >= min_s) & ~visits["ambiguous"]]


def test_long_visits_open_sessions_at_the_right_bed_near_arrival(world):
    _, _, _, visits, sessions, _, _ = world
    long = _clear(visits, DWELL_S + TOL_S)
    assert len(long) >= 5, "the simulated shift should bring clinicians to beds"
    for v in long.itertuples(index=False):
        s = sessions[(sessions["staff_id"] == v.staff_id) & (sessions["bed_id"] == v.bed_id)]
        delay = (s["start"] - v.start).dt.total_seconds().abs()
        assert (delay <= TOL_S).any(), f"{v.staff_id} at {v.bed_id} from {v.start}: sessions {s.to_dict('records')}"


def test_departures_close_sessions_near_the_last_moment_at_the_bed(world):
    _, _, _, visits, sessions, _, _ = world
    last = T0 + timedelta(seconds=TICKS - 1)
    done = _clear(visits, DWELL_S + TOL_S)
    done = done[done["end"] < pd.Timestamp(last) - pd.Timedelta(seconds=EXIT_S + TOL_S)]
    assert len(done) >= 1
    for v in done.itertuples(index=False):
        s = sessions[(sessions["staff_id"] == v.staff_id) & (sessions["bed_id"] == v.bed_id)
                     & ((sessions["start"] - v.start).dt.total_seconds().abs() <= TOL_S)]
        assert len(s) == 1 and s["end"].notna().all(), s
        # the end is the last read at the bed: never after leaving; a little before it when the last
        # seconds' reads fell outside the zone (standing near its edge) or were dropped
        assert -(TOL_S + 2) <= (s["end"].iloc[0] - v.end).total_seconds() <= 1.0


def test_no_flapping_and_no_phantom_sessions(world):
    _, _, _, visits, sessions, truth, close = world
    for _, mine in sessions.groupby("staff_id"):
        mine = mine.sort_values("start")
        ends = mine["end"].fillna(FAR)
        # one clinician is at one bed at a time, and a short dropout never splits a visit in two
        assert (mine["start"].iloc[1:].to_numpy() >= ends.iloc[:-1].to_numpy()).all()
        same_bed = mine["bed_id"].to_numpy()[1:] == mine["bed_id"].to_numpy()[:-1]
        gaps = (mine["start"].iloc[1:].to_numpy() - ends.iloc[:-1].to_numpy()) / np.timedelta64(1, "s")
        assert not (same_bed & (gaps < EXIT_S)).any()
    for v in _clear(visits, DWELL_S + TOL_S).itertuples(index=False):   # a clear visit is one session
        s = sessions[(sessions["staff_id"] == v.staff_id) & (sessions["start"] <= v.end)
                     & (sessions["end"].fillna(FAR) >= v.start + pd.Timedelta(seconds=DWELL_S + TOL_S))]
        assert s["bed_id"].tolist() == [v.bed_id], (v, s)
    for s in sessions.itertuples(index=False):        # every session had the clinician truly near that bed
        during = (truth["staff_id"] == s.staff_id) & (truth["ts"] >= s.start.floor("s")) & \
                 (truth["ts"] <= (s.end if pd.notna(s.end) else FAR))
        assert close.loc[during.to_numpy(), s.bed_id].any(), s


def test_sessions_name_the_patient_in_the_bed_and_current_bedside_matches(world):
    site, repo, pipe, _, sessions, _, _ = world
    by_bed = dict(zip(site.patients["bed_id"], site.patients["patient_id"]))
    assert (sessions["patient_id"].fillna("-") == sessions["bed_id"].map(by_bed).fillna("-")).all()
    last = T0 + timedelta(seconds=TICKS - 1)
    for s in pipe.bedside.tracker.open_sessions():
        here = bs.current_bedside(repo, s.staff_id, last)
        assert here is not None and (here.bed_id, here.patient_id) == (s.bed_id, s.patient_id)
    # a stopped feed does not leave clinicians "at the bed": open rows go stale
    assert all(bs.current_bedside(repo, s.staff_id, last + timedelta(seconds=60)) is None
               for s in pipe.bedside.tracker.open_sessions())


def _pipe(settings: Settings | None = None):
    site, repo = sample_site(), _repo()
    return site, repo, build_pipeline(site, repo, settings or Settings(), store_raw_reads=False)


def test_room_reader_coordinates_never_place_a_clinician_at_a_bed():
    site, _, pipe = _pipe()
    tag = site.tags.set_index("entity_id").at["S002", "tag_id"]
    located = pd.DataFrame({"ts": [pd.Timestamp(T0)] * 2, "tag_id": [tag, tag], "shape": ["reader", "reader"],
                            "x_m": [2.0, 2.0], "y_m": [1.35, 1.35], "floor_id": ["F1", "F1"],
                            "bed_id": [None, "WA-S1-1"]})
    samples = pipe.bedside.samples(located)
    assert samples["x_m"].isna().all() and samples["bed_id"].isna().tolist() == [True, False]
    assert samples["bed_id"].iloc[1] == "WA-S1-1"
    assert samples["staff_id"].tolist() == ["S002", "S002"]


def test_raw_position_reads_open_and_close_a_stored_session():
    site, repo, pipe = _pipe()
    tag = site.tags.set_index("entity_id").at["S002", "tag_id"]
    for k in range(8):                 # 0.85 m beside WA-S1-1 (centre x 2.0), as the simulator places staff
        now = T0 + timedelta(seconds=k)
        pipe.process(pd.DataFrame([position_read(tag, now, 2.85, 1.35)]), now)
    here = bs.current_bedside(repo, "S002", T0 + timedelta(seconds=7))
    assert (here.bed_id, here.patient_id, here.since) == ("WA-S1-1", "P001", T0)
    away = T0 + timedelta(seconds=7 + EXIT_S)
    pipe.process(pd.DataFrame([position_read(tag, away, 30.0, 8.5)]), away)
    rows = bs.sessions(repo, T0)
    assert len(rows) == 1 and rows["end"].iloc[0] == pd.Timestamp(T0 + timedelta(seconds=7))
    assert bs.current_bedside(repo, "S002", away) is None
    assert bs.last_visit(repo, "S002", "P001", away) == T0 + timedelta(seconds=7)


def test_a_new_pipeline_closes_sessions_left_open_by_the_last_one():
    site, repo, pipe = _pipe()
    bs.arrive(pipe, "S010", "WA-S2-1", T0)
    assert bs.sessions(repo, T0 - timedelta(minutes=1))["end"].isna().all()
    again = build_pipeline(site, repo, Settings(), store_raw_reads=False)
    again.process(pd.DataFrame(), T0 + timedelta(seconds=1))
    assert bs.sessions(repo, T0 - timedelta(minutes=1))["end"].notna().all()


def test_demo_badge_hold_goes_through_the_pipeline_and_walks_away():
    site, repo, pipe = _pipe()
    here = bs.arrive(pipe, "S010", "WB-B1-2", T0)
    assert (here.bed_id, here.patient_id) == ("WB-B1-2", dict(zip(site.patients["bed_id"], site.patients["patient_id"]))["WB-B1-2"])
    presence = repo.presence()
    assert presence.set_index("entity_id").at["S010", "room_id"] == "WB-B1"      # located like any read
    bs.leave(pipe, "S010", T0)
    assert bs.current_bedside(repo, "S010", T0 + timedelta(seconds=EXIT_S)) is None


@pytest.mark.parametrize("staff,bed,why", [("S999", "WA-S1-1", "no staff badge"), ("S010", "XX-1", "no bed")],
                         ids=["unknown-staff", "unknown-bed"])
def test_hold_refuses_unknown_staff_or_bed(staff, bed, why):
    _, _, pipe = _pipe()
    with pytest.raises(InvalidInput, match=why):
        pipe.bedside.hold_badge(staff, bed, T0)


def test_hold_is_refused_outside_demo_mode():
    _, _, pipe = _pipe(Settings(demo_mode=False))
    with pytest.raises(InvalidInput, match="demo mode"):
        pipe.bedside.hold_badge("S010", "WA-S1-1", T0)


def test_demo_bed_choices_put_my_beds_first_then_my_ward_then_the_rest():
    site = sample_site()
    mine = ["WA-B1-2", "WA-S1-1"]
    beds = bs.demo_bed_choices(site.beds, mine + [None, "NO-SUCH-BED"], "WA")
    ward = site.beds.set_index("bed_id")["ward_id"]
    assert beds[:2] == mine and sorted(beds) == sorted(site.beds["bed_id"])
    rest = [ward[b] == "WA" for b in beds[2:]]
    assert rest == sorted(rest, reverse=True) and not all(rest)           # my ward before other wards
