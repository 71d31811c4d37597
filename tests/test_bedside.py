"""core.bedside: sessions (arrivals, departures, no flapping), care context and the bedside view."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from core.bedside import (BedsideTracker, assign_beds, bedside_sessions, build_bedside_view, care_context, dose_label,
                          news2_band)
from core.errors import InvalidInput
from core.fhir import load
from core.sample_fhir import write_bundles

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)
BEDS = pd.DataFrame({"bed_id": ["B1", "B2"], "floor_id": ["F1", "F1"],
                     "geometry": [box(0, 0, 1, 2), box(1.8, 0, 2.8, 2)]})     # 0.8 m apart: margins overlap
PATIENTS = {"B1": "P1", "B2": "P2"}


def samples(spec):
    """spec: list of (second, staff, bed_id-or-(x, y)-or-None)."""
    rows = []
    for s, staff, where in spec:
        x, y, bed = (where if isinstance(where, tuple) else (np.nan, np.nan)) + ((None,) if isinstance(where, tuple) else (where,))
        rows.append({"ts": T0 + timedelta(seconds=s), "staff_id": staff, "bed_id": bed, "x_m": x, "y_m": y, "floor_id": "F1"})
    return pd.DataFrame(rows, columns=["ts", "staff_id", "bed_id", "x_m", "y_m", "floor_id"])


def at(bed, start, stop, staff="S1", step=1):
    return [(s, staff, bed) for s in range(start, stop + 1, step)]


@pytest.mark.parametrize("xy,floor,expected", [
    ((0.5, 1.0), "F1", "B1"), ((1.3, 1.0), "F1", "B1"), ((1.5, 1.0), "F1", "B2"),   # margin zone: nearest bed
    ((-0.6, 1.0), "F1", None), ((0.5, 1.0), "F2", None), ((2.3, 2.4), "F1", "B2"),
], ids=["inside", "margin-nearer-b1", "margin-nearer-b2", "outside-margin", "other-floor", "margin-above"])
def test_assign_beds_geometry(xy, floor, expected):
    frame = pd.DataFrame({"x_m": [xy[0]], "y_m": [xy[1]], "floor_id": [floor]})
    got = assign_beds(frame, BEDS, margin_m=0.5).iloc[0]
    assert (None if pd.isna(got) else got) == expected


def test_antenna_bed_id_wins_over_position():
    frame = pd.DataFrame({"bed_id": ["B2", None], "x_m": [0.5, 0.5], "y_m": [1.0, 1.0], "floor_id": ["F1", "F1"]})
    assert assign_beds(frame, BEDS).tolist() == ["B2", "B1"]


@pytest.mark.parametrize("spec,expected", [
    (at("B1", 0, 30), [("B1", "P1", 0, 30)]),
    (at("B1", 0, 3), []),                                                   # shorter than dwell
    (at("B1", 0, 20) + at("B1", 27, 40), [("B1", "P1", 0, 40)]),              # 6 s dropout < exit
    (at("B1", 0, 20) + at("B1", 29, 40), [("B1", "P1", 0, 20), ("B1", "P1", 29, 40)]),   # 8 s gap = exit
    (at("B1", 0, 20) + at("B2", 21, 40), [("B1", "P1", 0, 20), ("B2", "P2", 21, 40)]),   # walk to the next bed
    (at("B1", 0, 20) + at("B2", 21, 23) + at("B1", 24, 40), [("B1", "P1", 0, 40)]),       # brief lean over
    (at("B1", 0, 20) + [(s, "S1", None) for s in range(21, 25)] + at("B1", 25, 40), [("B1", "P1", 0, 40)]),
    (at("B1", 0, 20) + at("B1", 0, 20, staff="S2"), [("B1", "P1", 0, 20), ("B1", "P1", 0, 20)]),
    (at("B1", 0, 30) + [(s + 0.5, "S1", "B2") for s in range(0, 30)], [("B1", "P1", 0, 30)]),  # border: B1 first
], ids=["arrive-depart", "pass-by", "dropout", "exit-gap", "next-bed", "lean-over", "away-samples", "two-staff", "border-noise"])
def test_sessions_table(spec, expected):
    out = bedside_sessions(samples(spec), BEDS, PATIENTS, dwell_s=5, exit_s=8)
    got = [(r.bed_id, r.patient_id, (r.start - pd.Timestamp(T0)).total_seconds(), (r.end - pd.Timestamp(T0)).total_seconds())
           for r in out.itertuples()]
    assert got == expected
    assert not out["open"].any()


def test_positions_give_sessions_too():
    spec = [(s, "S1", (0.5, 1.0)) for s in range(0, 12)] + [(s, "S1", (5.0, 5.0)) for s in range(12, 30)]
    out = bedside_sessions(samples(spec), BEDS, PATIENTS)
    assert out[["bed_id", "patient_id", "duration_s"]].values.tolist() == [["B1", "P1", 11.0]]


def test_session_stays_open_with_now():
    out = bedside_sessions(samples(at("B1", 0, 30)), BEDS, PATIENTS, now=T0 + timedelta(seconds=34))
    assert out["open"].tolist() == [True] and out["end"].isna().all()


def test_tracker_opened_closed_and_current():
    tr = BedsideTracker(BEDS, PATIENTS, dwell_s=5, exit_s=8)
    opened, closed = tr.update(samples(at("B1", 0, 3)), T0 + timedelta(seconds=3))
    assert (opened, closed) == ([], []) and tr.current("S1") is None
    opened, closed = tr.update(samples(at("B1", 4, 10)), T0 + timedelta(seconds=10))
    assert [(s.bed_id, s.patient_id, s.start) for s in opened] == [("B1", "P1", T0)] and closed == []
    assert tr.current("S1").bed_id == "B1"
    opened, closed = tr.update(samples([(11, "S1", None)]), T0 + timedelta(seconds=17))
    assert closed == [] and tr.current("S1") is not None                    # away 7 s < exit
    opened, closed = tr.update(samples([(19, "S1", None)]), T0 + timedelta(seconds=18))
    assert [(s.bed_id, s.end) for s in closed] == [("B1", T0 + timedelta(seconds=10))]
    assert tr.current("S1") is None


def test_tracker_counts_late_samples_and_refuses_bad_input():
    tr = BedsideTracker(BEDS, PATIENTS)
    tr.update(samples(at("B1", 10, 20)), T0 + timedelta(seconds=20))
    tr.update(samples(at("B1", 0, 4)), T0 + timedelta(seconds=21))
    assert tr.late_samples == 5
    with pytest.raises(InvalidInput):
        tr.update(pd.DataFrame({"ts": [T0]}), T0)
    with pytest.raises(InvalidInput):
        BedsideTracker(BEDS, PATIENTS, exit_s=0)


# Hypothesis: a visit at B1 with random dropouts shorter than exit_s never splits; passes shorter than
# dwell_s separated by more than exit_s never open a session; batch == incremental.
gaps = st.lists(st.floats(min_value=0.2, max_value=7.9), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=gaps, noise=st.lists(st.booleans(), min_size=40, max_size=40))
def test_dropouts_below_exit_never_split(gaps, noise):
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    t = np.concatenate([t, t[-1] + np.arange(1, 7)])           # at least 6 s at the bed: above dwell
    spec = [(float(x), "S1", "B1") for x in t]
    # between bed samples: either an "away" sample or a single noisy read at the neighbouring bed
    spec += [(float(x) + 0.1, "S1", "B2" if flag else None) for x, flag in zip(t[:-1], noise)]
    out = bedside_sessions(samples(spec), BEDS, PATIENTS, dwell_s=5, exit_s=8)
    assert out["bed_id"].tolist() == ["B1"]
    assert out["start"].iloc[0] == pd.Timestamp(T0)
    assert abs(out["end"].iloc[0] - pd.Timestamp(T0) - pd.Timedelta(seconds=float(t[-1]))) <= pd.Timedelta(microseconds=1)


@settings(max_examples=60, deadline=None)
@given(passes=st.lists(st.tuples(st.floats(min_value=0, max_value=4.9), st.floats(min_value=8.1, max_value=30),
                                 st.sampled_from(["B1", "B2"])), min_size=1, max_size=12))
def test_short_passes_never_open(passes):
    spec, t = [], 0.0
    for length, gap, bed in passes:
        spec += [(t + x, "S1", bed) for x in np.arange(0, length + 1e-9, 0.7)]
        t += length + gap
    assert bedside_sessions(samples(spec), BEDS, PATIENTS, dwell_s=5, exit_s=8).empty


@settings(max_examples=40, deadline=None)
@given(beds=st.lists(st.sampled_from(["B1", "B2", None]), min_size=5, max_size=120),
       cut=st.lists(st.integers(min_value=1, max_value=119), max_size=4))
def test_incremental_equals_batch(beds, cut):
    spec = [(float(i), "S1", b) for i, b in enumerate(beds)]
    batch = bedside_sessions(samples(spec), BEDS, PATIENTS)
    want = [(r.bed_id, r.start.to_pydatetime(), r.end.to_pydatetime()) for r in batch.itertuples()]
    tr = BedsideTracker(BEDS, PATIENTS)
    got, lo = [], 0
    for hi in sorted({c for c in cut if c < len(spec)}) + [len(spec)]:
        got += tr.update(samples(spec[lo:hi]), T0 + timedelta(seconds=hi - 1))[1]   # now = last sample
        lo = hi
    got += tr.update(samples([]), T0 + timedelta(days=1))[1]
    assert [(s.bed_id, s.start, s.end) for s in got] == want


# ---------------------------------------------------------------- care context

SHIFT = [{"staff_id": "N1", "patient_id": "P1", "shift_start": T0 - timedelta(hours=2), "shift_end": T0 + timedelta(hours=10)},
         {"staff_id": "N1", "patient_id": "P2", "shift_start": T0 - timedelta(hours=26), "shift_end": T0 - timedelta(hours=14)}]
GRANTS = [{"staff_id": "D1", "patient_id": "P1", "expires_at": T0 + timedelta(minutes=30)}]


@pytest.mark.parametrize("staff,patient,now,access,btg,in_care", [
    ("N1", "P1", T0, "full", False, True),
    ("N1", "P2", T0, "location_only", True, False),                       # yesterday's assignment
    ("N1", "P1", T0 + timedelta(hours=10), "location_only", True, False),  # shift ended
    ("D1", "P1", T0, "full", False, False),                               # live break-glass grant
    ("D1", "P1", T0 + timedelta(hours=1), "location_only", True, False),  # grant expired
    ("X9", "P1", T0, "location_only", True, False),
], ids=["assigned", "old-shift", "shift-over", "break-glass", "grant-expired", "stranger"])
def test_care_context(staff, patient, now, access, btg, in_care):
    d = care_context(staff, patient, pd.DataFrame(SHIFT), now, grants=GRANTS)
    assert (d.access, d.break_glass_required, d.in_care) == (access, btg, in_care) and d.reason


def test_care_context_refuses_malformed_rows():
    with pytest.raises(InvalidInput):
        care_context("N1", "P1", [{"staff_id": "N1"}], T0)


# ---------------------------------------------------------------- bedside view

@pytest.mark.parametrize("total,red,band", [(0, False, "none"), (3, False, "low"), (3, True, "low_medium"),
                                            (5, False, "medium"), (7, False, "high")],
                         ids=["zero", "low", "red", "medium", "high"])
def test_news2_band(total, red, band):
    assert news2_band(total, red) == band          # standards.md 1.2


NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
ROWS = [{"patient_id": "P1", "mrn": "MRN1", "given": "Jon", "family": "Novak", "birth_date": "1931-04-08", "sex": "male",
         "bed_id": "WA-S1-1", "ward_id": "WA", "fall_risk": "False"},
        {"patient_id": "P2", "mrn": "MRN2", "given": "Zoe", "family": "Gill", "birth_date": "1953-02-05", "sex": "female",
         "bed_id": "WA-S2-1", "ward_id": "WA", "fall_risk": "False"}]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("bedside")
    write_bundles(ROWS, out, NOW, seed=5)
    return load(out)


def test_view_essentials_for_the_deteriorating_patient(records):
    news = pd.DataFrame({"ts": [NOW - timedelta(hours=8), NOW - timedelta(hours=1)], "total": [0, 11]})
    v = build_bedside_view(records["P1"], NOW, last_visit=NOW - timedelta(hours=12), news2=news)
    assert (v.name, v.age_years, v.mrn, v.bed_id) == ("Jon Novak", 94, "MRN1", "WA-S1-1")
    assert v.high_risk_allergy and v.allergies[0].high_risk
    assert v.problems and all(c.clinical_status == "active" for c in v.problems)
    latest = {r.name: r for r in v.latest_vitals}
    assert latest["resp_rate_per_min"].value >= 24 and latest["consciousness"].value_text == "A"
    assert v.news2 == 11
    kinds = {r.kind for r in v.reminders}
    assert {"news2", "news2_rising", "fall_risk", "allergy"} <= kinds
    assert any(d.status == "overdue" for d in v.meds_due)
    assert all(d.due <= NOW + timedelta(hours=2) for d in v.meds_due)
    assert len(v.results_pending) == 2 and v.results_new
    assert any(t.startswith("OVERDUE: give") for t in v.nursing_tasks)


def test_view_news2_callable_and_doctor_variant(records):
    calls = []

    def scorer(vitals):
        calls.append(len(vitals))
        return pd.DataFrame({"ts": [NOW - timedelta(minutes=20)], "total": [0]})
    v = build_bedside_view(records["P2"], NOW, news2=scorer, variant="doctor")
    assert calls and calls[0] > 0 and v.news2 == 0 and v.nursing_tasks == ()
    assert all(r.kind != "obs_overdue" for r in v.reminders)          # score 0 → 12-hourly obs, taken < 4 h ago


def test_view_results_since_last_visit_and_obs_overdue(records):
    rec = records["P2"]
    latest_issue = max(r.issued for r in rec.results)
    assert build_bedside_view(rec, NOW, last_visit=latest_issue).results_new == ()
    later = NOW + timedelta(hours=6)
    news = pd.DataFrame({"ts": [NOW], "total": [5]})
    v = build_bedside_view(rec, later, news2=news)
    assert any(r.kind == "obs_overdue" and r.severity == "urgent" for r in v.reminders)   # 1-hourly at NEWS2 5
    with pytest.raises(InvalidInput):
        build_bedside_view(rec, NOW, variant="porter")


TODAY = datetime(2026, 3, 10, tzinfo=timezone.utc).date()          # a Tuesday


@pytest.mark.parametrize("due, status, label", [
    (datetime(2026, 3, 9, 11, 10), "overdue", "missed yesterday 11:10"),
    (datetime(2026, 3, 7, 11, 10), "overdue", "missed Sat 11:10"),
    (datetime(2026, 3, 10, 11, 10), "overdue", "OVERDUE 11:10"),
    (datetime(2026, 3, 10, 11, 10), "due", "due 11:10"),
    (datetime(2026, 3, 11, 7, 0), "due", "due tomorrow 07:00"),
], ids=["missed-yesterday", "missed-days-ago", "overdue-today", "due-today", "due-tomorrow"])
def test_dose_label_names_the_day_unless_today(due, status, label):
    assert dose_label(due, status, TODAY) == label


def test_yesterdays_missed_dose_and_todays_same_time_read_differently(records):
    """A once-daily-ish schedule seen over 24 h lists the same clock time twice: the labels must differ."""
    for now in (NOW, NOW + timedelta(hours=7), NOW + timedelta(hours=19)):
        v = build_bedside_view(records["P1"], now, news2=pd.DataFrame({"ts": [now], "total": [1]}))
        labels = [dose_label(d.due, d.status, now.date()) + d.medication for d in v.meds_due]
        assert len(labels) == len(set(labels))
        for d in v.meds_due:
            missed = d.status == "overdue" and d.due.date() < now.date()
            assert dose_label(d.due, d.status, now.date()).startswith("missed") == missed
        if now == NOW:                                                 # the reviewer's case: same clock time twice
            times = [f"{d.due:%H:%M}" for d in v.meds_due]
            assert any(times.count(t) > 1 for t in times)
            assert any(dose_label(d.due, d.status, now.date()).startswith("missed yesterday") for d in v.meds_due)
        tasks = [t for t in v.nursing_tasks if "give" in t.lower()]
        assert len(tasks) == len(set(tasks)) == len(v.meds_due)
