"""ops_data: the store → operations frames, on a store filled by the real pipeline, plus small
hand-built cases for the inference rules."""
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert

from core import ops_data
from core.alarms.engine import Alarm
from core.alarms.tables import save_alarms
from core.storage import schema as s
from core.storage.repository import Repository
from tests.helpers import T0, run_feed, sample_site

TICKS = 90
START = pd.Timestamp(T0) - pd.Timedelta(minutes=10)
END = pd.Timestamp(T0) + pd.Timedelta(seconds=TICKS)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    repo = Repository.from_url(f"sqlite:///{tmp_path_factory.mktemp('ops') / 'ops.db'}")
    repo.create_schema()
    site = sample_site()
    repo.load_site(site)
    run_feed(repo, site, TICKS)
    return repo, site


@pytest.fixture(scope="module")
def intervals(store):
    repo, _ = store
    return ops_data.presence_intervals(repo.engine, START, END)


def test_current_place_of_every_tag_is_its_open_interval(store, intervals):
    repo, _ = store
    current = repo.presence(None)
    current = current[current["room_id"].notna()].set_index("entity_id")["room_id"]
    open_iv = intervals[~intervals["end_known"]].set_index("entity_id")["room_id"]
    assert len(current) > 100
    assert open_iv.reindex(current.index).to_dict() == current.to_dict()
    assert (intervals["end"] > intervals["start"]).all()
    assert intervals["start"].min() >= START and intervals["end"].max() <= END


def test_room_events_are_real_door_crossings_into_patient_rooms(store, intervals):
    repo, site = store
    ev = ops_data.room_events(intervals, site.rooms)
    assert "enter" in set(ev["event"])      # 90 s is shorter than a bedside dwell: exits come later
    room_type = site.rooms.set_index("room_id")["room_type"]
    assert ev["room_id"].map(room_type).isin(["bay", "single"]).all()
    staff = set(site.entities.loc[site.entities["kind"] == "staff", "entity_id"])
    assert ev["staff_id"].isin(staff).all()
    # every entry is a stored presence change of that person into that room at that moment
    enters = ev[ev["event"] == "enter"].head(20)
    for row in enters.itertuples(index=False):
        ch = repo.presence_changes(row.staff_id, int(row.ts.value // 1_000_000) - 1, int(row.ts.value // 1_000_000))
        assert list(ch["room_id"]) == [row.room_id]


def test_one_visit_across_beds_of_a_bay_gives_one_enter_and_one_exit():
    site = sample_site()
    m = lambda k: START + pd.Timedelta(minutes=k)   # noqa: E731
    iv = pd.DataFrame({"entity_id": ["S002"] * 4, "kind": ["staff"] * 4, "subtype": ["nurse"] * 4,
                       "home_ward_id": ["WA"] * 4, "home_id": [None] * 4, "floor_id": ["F1"] * 4,
                       "room_id": ["WA-COR", "WA-B1", "WA-B1", "WA-COR"], "bed_id": [None, "WA-B1-1", "WA-B1-2", None],
                       "x_m": [np.nan] * 4, "y_m": [np.nan] * 4, "start": [m(0), m(1), m(3), m(6)],
                       "end": [m(1), m(3), m(6), m(8)], "start_known": [False, True, True, True],
                       "end_known": [True, True, True, False]})
    ev = ops_data.room_events(iv, site.rooms)
    assert ev[["room_id", "event"]].values.tolist() == [["WA-B1", "enter"], ["WA-B1", "exit"]]
    assert ev["ts"].tolist() == [m(1), m(6)]


def test_device_status_follows_the_room_it_is_in(store, intervals):
    _, site = store
    dev = ops_data.device_intervals(intervals, site.rooms, site.beds)
    room_type = dev["room_id"].map(site.rooms.set_index("room_id")["room_type"])
    expected = {"idle": {"equipment_store"}, "cleaning": {"dirty_utility"}, "in_use": {"bay", "single"}}
    assert len(dev) > 0
    for status, types in expected.items():
        assert set(room_type[dev["status"] == status]) <= types
    assert dev["ward_id"].isin(site.wards["ward_id"]).all()


@pytest.mark.parametrize("dx_m,status", [(0.0, "in_use"), (1.2, "in_use"), (4.0, None)],
                         ids=["on-bed", "beside-bed", "by-the-bay-door"])
def test_a_device_in_a_bay_is_in_use_only_near_a_bed(dx_m, status):
    site = sample_site()
    bed = site.beds[site.beds["room_id"].str.contains("-B1")].iloc[0]
    iv = pd.DataFrame({"entity_id": ["D1"], "kind": ["device"], "subtype": ["infusion_pump"], "home_ward_id": ["WA"],
                       "home_id": ["WA-EQ"], "floor_id": ["F1"], "room_id": [bed["room_id"]], "bed_id": [None],
                       "x_m": [bed["cx_m"]], "y_m": [bed["cy_m"] - dx_m], "start": [START], "end": [END],
                       "start_known": [True], "end_known": [True]})
    got = ops_data.device_intervals(iv, site.rooms, site.beds)
    assert (got["status"].tolist() or [None]) == [status]


def test_intervals_from_changes_start_at_the_window_and_stop_at_unknown():
    t = lambda m: int((START + pd.Timedelta(minutes=m)).value // 1_000_000)   # noqa: E731
    ch = pd.DataFrame({"tag_id": ["T"] * 3, "entity_id": ["E"] * 3, "ts_ms": [t(-5), t(2), t(4)],
                       "floor_id": ["F1", "F1", None], "room_id": ["A", "B", None], "bed_id": [None] * 3,
                       "x_m": [1.0, 2.0, np.nan], "y_m": [1.0, 2.0, np.nan]})
    ent = pd.DataFrame({"entity_id": ["E"], "kind": ["staff"], "subtype": ["nurse"], "home_ward_id": ["WA"],
                        "home_id": [None]})
    iv = ops_data._intervals(ch, ent, t(0), t(10))
    assert iv["room_id"].tolist() == ["A", "B"]
    assert (iv["start"] - START).tolist() == [pd.Timedelta(0), pd.Timedelta(minutes=2)]
    assert (iv["end"] - START).tolist() == [pd.Timedelta(minutes=2), pd.Timedelta(minutes=4)]
    assert iv["start_known"].tolist() == [False, True] and iv["end_known"].tolist() == [True, True]


def test_patients_occupy_their_home_bed(store, intervals):
    _, site = store
    stays = ops_data.bed_stays(intervals, site.beds)
    home = site.patients.set_index("patient_id")["bed_id"]
    assert len(stays) > 0
    assert (stays["bed_id"] == stays["patient_id"].map(home)).all()


def test_missing_bedside_table_is_reported_not_guessed(store):
    repo, site = store
    frames = ops_data.live_frames(repo.engine, site, START, END)
    if ops_data.read_bedside_sessions(repo.engine, site.beds, START, END) is None:
        assert frames.sessions.empty
        assert any("bedside" in n for n in frames.notes)
    assert any("inferred" in n for n in frames.notes)


def test_bedside_sessions_are_read_with_the_ward_of_their_bed(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'b.db'}")
    repo.create_schema()
    site = sample_site()
    from core.bedside_service import bedside_sessions as t     # the real table (create_schema made it)
    ms = int(START.value // 1_000_000)
    with repo.engine.begin() as conn:
        conn.execute(insert(t), [
            {"staff_id": "S002", "patient_id": "P001", "bed_id": "WA-S1-1", "start_ms": ms + 1000, "end_ms": ms + 61_000,
             "last_seen_ms": ms + 61_000},
            {"staff_id": "S002", "patient_id": "P001", "bed_id": "WA-S1-1", "start_ms": ms - 9000, "end_ms": None,
             "last_seen_ms": ms},
            {"staff_id": "S017", "patient_id": "P030", "bed_id": "WB-S1-1", "start_ms": ms - 9000, "end_ms": ms - 1,
             "last_seen_ms": ms - 1}])
    got = ops_data.read_bedside_sessions(repo.engine, site.beds, START, END)
    assert got["ward_id"].tolist() == ["WA", "WA"]
    assert got["end"].isna().tolist() == [False, True]


def test_alarms_and_excursions_are_read_back_from_the_alarm_store(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    repo.create_schema()
    raised = (START + pd.Timedelta(minutes=1)).to_pydatetime()
    alarms = [Alarm("A1", "vitals.news2", "k1", "high", "NEWS2 7", raised, ward_id="WA",
                    acknowledged_at=raised + timedelta(seconds=45), escalation_level=1),
              Alarm("A2", "storage.excursion", "k2", "medium", "fridge warm", raised, ward_id="WB",
                    location_id="WB-MED-F1", drug_ids=("d1", "d2", "d3"), details={"mkt_c": 9.4},
                    resolved_at=raised + timedelta(minutes=30))]
    with repo.engine.begin() as conn:
        save_alarms(conn, alarms)
    got = ops_data.read_alarms(repo.engine, START, END).set_index("alarm_id")
    assert (got.at["A1", "acknowledged_at"] - got.at["A1", "raised_at"]).total_seconds() == 45
    assert got.at["A1", "escalation_level"] == 1
    x = ops_data.excursions_from_alarms(got.reset_index(), END)
    assert x[["location_id", "duration_s", "drugs_affected", "mkt_c", "ward_id"]].iloc[0].tolist() == \
        ["WB-MED-F1", 1800.0, 3, 9.4, "WB"]


def test_day_window_has_23_hours_on_the_spring_dst_day():
    s, e = ops_data.day_window(date(2026, 3, 29), date(2026, 3, 29), "Europe/London")
    assert (e - s) == pd.Timedelta(hours=23)
    with pytest.raises(ValueError):
        ops_data.day_window(date(2026, 3, 29), date(2026, 3, 28), "Europe/London")


def test_people_positions_sample_one_read_per_window(store):
    repo, site = store
    pos = ops_data.people_positions(repo.engine, site.tags, START, END)
    win = pos["ts"].astype("int64") // (ops_data.POSITION_SAMPLE_MS * 1000)
    assert len(pos) > 0
    assert pos.assign(w=win).groupby(["entity_id", "w"]).size().max() <= 3
    kinds = pos["entity_id"].map(site.entities.set_index("entity_id")["kind"])
    assert set(kinds) <= {"staff", "patient", "device"}
    assert len(s.raw_reads.c) > 0
