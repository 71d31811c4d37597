"""NEWS2 against the hand-computed vectors of standards.md §1.2 and the Chart-1 band edges."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.alarms.vitals import (ImpossibleVital, MissingVital, glucose_level, news2, news2_frame,
                                news2_partial, validate_glucose)
from core.errors import ImpossibleVitalSign, InvalidInput

SUB_ORDER = ("resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temp_c")

# standards.md §1.2 table, verbatim: RR, SpO2, O2, SBP, HR, ACVPU, T, scale, subscores, total, band.
VECTORS = [
    ("all normal", 16, 97, False, 120, 70, "A", 37.0, 1, (0, 0, 0, 0, 0, 0, 0), 0, "low"),
    ("openeobs LOW", 11, 99, False, 120, 65, "A", 37.5, 1, (1, 0, 0, 0, 0, 0, 0), 1, "low"),
    ("openeobs MEDIUM", 11, 95, False, 110, 50, "A", 36.0, 1, (1, 1, 0, 1, 1, 0, 1), 5, "medium"),
    ("openeobs HIGH", 25, 93, False, 100, 130, "A", 38.5, 1, (3, 2, 0, 2, 2, 0, 1), 10, "high"),
    ("Synanetics inputs", 21, 93, False, 120, 95, "A", 37.5, 1, (2, 2, 0, 0, 1, 0, 0), 5, "medium"),
    ("single red (RR)", 25, 97, False, 120, 70, "A", 37.0, 1, (3, 0, 0, 0, 0, 0, 0), 3, "low-medium"),
    ("new confusion", 16, 97, False, 120, 70, "C", 37.0, 1, (0, 0, 0, 0, 0, 3, 0), 3, "low-medium"),
    ("on O2, SpO2 96", 16, 96, True, 120, 70, "A", 37.0, 1, (0, 0, 2, 0, 0, 0, 0), 2, "low"),
    ("scale 2, air, 97", 16, 97, False, 120, 70, "A", 37.0, 2, (0, 0, 0, 0, 0, 0, 0), 0, "low"),
    ("scale 2, O2, 97", 16, 97, True, 120, 70, "A", 37.0, 2, (0, 3, 2, 0, 0, 0, 0), 5, "medium"),
    ("scale 2, O2, 93", 16, 93, True, 120, 70, "A", 37.0, 2, (0, 1, 2, 0, 0, 0, 0), 3, "low"),
    ("scale 2, air, 90", 16, 90, False, 120, 70, "A", 37.0, 2, (0, 0, 0, 0, 0, 0, 0), 0, "low"),
    ("same on scale 1", 16, 90, False, 120, 70, "A", 37.0, 1, (0, 3, 0, 0, 0, 0, 0), 3, "low-medium"),
    ("upper 0 edges", 20, 96, False, 111, 51, "A", 38.0, 1, (0, 0, 0, 0, 0, 0, 0), 0, "low"),
    ("just-over edges", 21, 95, False, 110, 91, "A", 38.1, 1, (2, 1, 0, 1, 1, 0, 1), 6, "medium"),
    ("maximum", 5, 80, True, 80, 140, "U", 34.0, 1, (3, 3, 2, 3, 3, 3, 3), 20, "high"),
]


def _kw(v):
    return dict(resp_rate=v[1], spo2=v[2], on_oxygen=v[3], systolic_bp=v[4], pulse=v[5],
                consciousness=v[6], temp_c=v[7], spo2_scale=v[8])


@pytest.mark.parametrize("v", VECTORS, ids=[v[0] for v in VECTORS])
def test_standards_vectors(v):
    r = news2(**_kw(v))
    assert tuple(r.subscores[p] for p in SUB_ORDER) == v[9]
    assert r.total == v[10]
    assert r.risk == v[11]
    assert r.red_score == (3 in v[9])


@pytest.mark.parametrize("v", VECTORS, ids=[v[0] for v in VECTORS])
def test_frame_matches_standards_vectors(v):
    out = news2_frame(pd.DataFrame([_kw(v)]))
    assert out["total"].iloc[0] == v[10]
    assert out["risk"].iloc[0] == v[11]
    assert bool(out["red_score"].iloc[0]) == (3 in v[9])


BASE = dict(resp_rate=16, spo2=97, on_oxygen=False, systolic_bp=120, pulse=70, consciousness="A", temp_c=37.0)

# Chart 1 band edges per parameter (value, expected subscore), standards §1.1.
EDGES = [("resp_rate", v, s) for v, s in [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (0, 3), (20.5, 2)]] + \
        [("spo2", v, s) for v, s in [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (95.5, 0)]] + \
        [("systolic_bp", v, s) for v, s in [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (219.5, 3)]] + \
        [("pulse", v, s) for v, s in [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)]] + \
        [("temp_c", v, s) for v, s in [(35.0, 3), (35.05, 1), (35.1, 1), (36.0, 1), (36.1, 0), (37.9, 0), (38.0, 0),
                                        (38.05, 1), (38.1, 1), (39.0, 1), (39.1, 2), (42.0, 2)]] + \
        [("consciousness", c, s) for c, s in [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3), ("a", 0)]]


@pytest.mark.parametrize("param,value,expected", EDGES, ids=[f"{p}={v}" for p, v, _ in EDGES])
def test_band_edges(param, value, expected):
    assert news2(**{**BASE, param: value}).subscores[param] == expected


SCALE2 = [(83, False, 3), (84, False, 2), (86, False, 1), (88, False, 0), (92, False, 0), (93, False, 0),
          (100, False, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2),
          (97, True, 3), (85, True, 2)]


@pytest.mark.parametrize("spo2,on_o2,expected", SCALE2, ids=[f"{s}-{'O2' if o else 'air'}" for s, o, _ in SCALE2])
def test_scale2_bands(spo2, on_o2, expected):
    r = news2(**{**BASE, "spo2": spo2, "on_oxygen": on_o2, "spo2_scale": 2})
    assert r.subscores["spo2"] == expected
    assert r.subscores["on_oxygen"] == (2 if on_o2 else 0)


MONITOR = [(dict(), "12h"), (dict(resp_rate=11), "4-6h"), (dict(resp_rate=25), "1h"),
           (dict(resp_rate=21, spo2=93, pulse=95), "1h"), (dict(resp_rate=25, spo2=91, pulse=131), "continuous")]


@pytest.mark.parametrize("change,freq", MONITOR, ids=["zero", "low", "red", "medium", "high"])
def test_monitoring_frequency(change, freq):
    assert news2(**{**BASE, **change}).monitoring == freq


IMPOSSIBLE = [("spo2", 150), ("pulse", -5), ("temp_c", 98.6), ("consciousness", "X"), ("resp_rate", -1),
              ("systolic_bp", 0), ("systolic_bp", 301), ("spo2", 0), ("temp_c", math.inf),
              ("pulse", "fast"), ("on_oxygen", "yes"), ("resp_rate", True)]


@pytest.mark.parametrize("param,value", IMPOSSIBLE, ids=[f"{p}={v!r}" for p, v in IMPOSSIBLE])
def test_impossible_values_raise_naming_parameter(param, value):
    with pytest.raises(ImpossibleVital) as exc:
        news2(**{**BASE, param: value})
    assert isinstance(exc.value, ImpossibleVitalSign) and isinstance(exc.value, ValueError)
    assert param in str(exc.value) and repr(value) in str(exc.value)
    assert exc.value.parameter == param


def test_bad_scale_is_invalid_input():
    with pytest.raises(InvalidInput):
        news2(**BASE, spo2_scale=3)


def test_missing_parameter_is_refused_not_scored_low():
    with pytest.raises(MissingVital) as exc:
        news2(**{**BASE, "temp_c": None})
    assert exc.value.missing == ("temp_c",)


def test_partial_reports_incomplete_with_lower_bound():
    p = news2_partial(**{**BASE, "resp_rate": 25, "temp_c": None, "spo2": None})
    assert p.status == "incomplete" and p.result is None
    assert p.missing == ("spo2", "temp_c")
    assert p.minimum_total == 3 and p.minimum_risk == "low-medium" and p.red_score


def test_partial_complete_equals_news2():
    assert news2_partial(**BASE).result == news2(**BASE)


def test_partial_still_rejects_impossible_values():
    with pytest.raises(ImpossibleVital):
        news2_partial(**{**BASE, "pulse": -5, "temp_c": None})


def test_partial_scale2_without_oxygen_status_does_not_guess_spo2():
    p = news2_partial(**{**BASE, "spo2": 97, "on_oxygen": None, "spo2_scale": 2})
    assert set(p.missing) == {"spo2", "on_oxygen"}


# ---------------------------------------------------------------- properties
obs = st.fixed_dictionaries(dict(
    resp_rate=st.integers(0, 60), spo2=st.integers(60, 100), on_oxygen=st.booleans(),
    systolic_bp=st.integers(40, 280), pulse=st.integers(20, 220),
    consciousness=st.sampled_from("ACVPU"), temp_c=st.floats(30.0, 43.0).map(lambda t: round(t, 2)),
    spo2_scale=st.sampled_from([1, 2])))


@settings(max_examples=200, deadline=None)
@given(obs)
def test_total_is_sum_of_subscores_and_in_range(o):
    r = news2(**o)
    assert r.total == sum(r.subscores.values())
    assert 0 <= r.total <= 20
    assert all(0 <= s <= 3 for s in r.subscores.values())
    assert r.red_score == (3 in r.subscores.values())


@settings(max_examples=100, deadline=None)
@given(obs)
def test_worse_consciousness_or_oxygen_never_lowers_total(o):
    base = news2(**o)
    assert news2(**{**o, "consciousness": "U"}).total >= base.total
    if o["spo2_scale"] == 1:     # on scale 2, O2 also changes SpO2 banding, checked in SCALE2
        assert news2(**{**o, "on_oxygen": True}).total >= base.total


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(obs, obs.map(lambda o: {**o, "pulse": -5}), obs.map(lambda o: {**o, "temp_c": None}),
                          obs.map(lambda o: {**o, "consciousness": "X"})), min_size=1, max_size=25))
def test_frame_agrees_with_scalar(rows):
    out = news2_frame(pd.DataFrame(rows))
    for i, o in enumerate(rows):
        try:
            r = news2(**o)
        except ValueError:
            assert out["status"].iloc[i] != "scored" and isinstance(out["rejected_reason"].iloc[i], str)
            assert pd.isna(out["total"].iloc[i])
            continue
        assert out["status"].iloc[i] == "scored" and pd.isna(out["rejected_reason"].iloc[i])
        assert (out["total"].iloc[i], out["risk"].iloc[i], bool(out["red_score"].iloc[i]),
                out["monitoring"].iloc[i]) == (r.total, r.risk, r.red_score, r.monitoring)


def test_frame_rejected_reason_names_parameter_and_value():
    df = pd.DataFrame([BASE, {**BASE, "spo2": 150}, {**BASE, "consciousness": "X"}, {**BASE, "pulse": None}])
    out = news2_frame(df)
    assert list(out["status"]) == ["scored", "impossible", "impossible", "incomplete"]
    assert "spo2=150" in out["rejected_reason"].iloc[1]
    assert "consciousness" in out["rejected_reason"].iloc[2]
    assert out["total"].isna().tolist() == [False, True, True, True]


# ---------------------------------------------------------------- glucose
GLUCOSE = [(2.5, "severe_hypo", "high"), (3.0, "hypo", "medium"), (3.9, "hypo", "medium"), (4.0, "normal", None),
           (11.0, "normal", None), (11.1, "hyper", "low"), (20.0, "hyper", "low"), (25.0, "severe_hyper", "medium")]


@pytest.mark.parametrize("g,level,prio", GLUCOSE, ids=[str(g[0]) for g in GLUCOSE])
def test_glucose_levels(g, level, prio):
    assert glucose_level(g) == (level, prio)


@pytest.mark.parametrize("g", [0, -1, 180.0, "5.5", np.inf], ids=["zero", "negative", "mg/dL-typed", "string", "inf"])
def test_glucose_impossible(g):
    with pytest.raises(ImpossibleVital, match="glucose_mmol_l"):
        validate_glucose(g)


# ---------------------------------------------------------------- alarm conditions
from core.alarms.vitals import vitals_conditions  # noqa: E402

NOW = pd.Timestamp("2025-03-01T12:00:00Z")
COND_CASES = [  # changes to BASE, minutes since obs, expected (kind, priority) set
    ("normal recent", {}, 5, set()),
    ("normal but 13 h old", {}, 13 * 60, {("vitals.obs_overdue", "low")}),
    ("low 1-4 at 5 h", {"resp_rate": 11}, 5 * 60, set()),
    ("low 1-4 at 7 h", {"resp_rate": 11}, 7 * 60, {("vitals.obs_overdue", "low")}),
    ("red score", {"resp_rate": 25}, 5, {("vitals.red_score", "medium")}),
    ("medium", {"resp_rate": 21, "spo2": 93, "pulse": 95}, 5, {("vitals.news2", "medium")}),
    ("high, 10 min old", {"resp_rate": 25, "spo2": 91, "pulse": 131}, 10,
     {("vitals.news2", "high"), ("vitals.obs_overdue", "low")}),
    ("impossible", {"pulse": -5}, 5, {("vitals.obs_overdue", "low")}),
    ("incomplete", {"temp_c": None}, 5, {("vitals.obs_overdue", "low")}),
]


@pytest.mark.parametrize("change,minutes,expected", [c[1:] for c in COND_CASES], ids=[c[0] for c in COND_CASES])
def test_vitals_conditions(change, minutes, expected):
    obs = pd.DataFrame([{**BASE, **change, "patient_id": "p1", "bed_id": "b1",
                         "ts": NOW - pd.Timedelta(minutes=minutes)}])
    conds, _scored = vitals_conditions(obs, NOW)
    assert set(zip(conds["kind"], conds["priority"])) == expected
    assert all(conds["key"].str.endswith(":p1"))
