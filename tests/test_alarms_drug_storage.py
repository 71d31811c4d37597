"""Drug storage: MKT, excursions (timed and extreme), humidity, silent loggers, misplaced drugs,
nearest suitable location and excursion episodes."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.alarms.drug_storage import (StorageInputError, excursion_episodes, mean_kinetic_temperature,
                                      storage_conditions)
from core.alarms.engine import AlarmEngine
from core.errors import InvalidInput

NOW = pd.Timestamp("2025-03-01T12:00:00Z")

LOCS = pd.DataFrame([
    ("fridge-A", "R1", "F1", 0.0, 0.0, "fridge", "refrigerated"),
    ("fridge-B", "R2", "F1", 20.0, 0.0, "fridge", "refrigerated"),
    ("fridge-C", "R3", "F1", 5.0, 0.0, "fridge", "refrigerated"),      # nearest to A, but silent
    ("fridge-D", "R9", "F2", 1.0, 0.0, "fridge", "refrigerated"),      # other floor
    ("cup-A", "R1", "F1", 1.0, 1.0, "cupboard", "crt"),
    ("freezer-A", "R4", "F1", 2.0, 2.0, "freezer", "frozen"),
], columns=["location_id", "room_id", "floor_id", "x_m", "y_m", "kind", "storage_class"])


def series(loc, temps, step_s=60, end=NOW, rh=None, lux=None):
    n = len(temps)
    ts = [end - pd.Timedelta(seconds=step_s * (n - 1 - i)) for i in range(n)]
    return pd.DataFrame({"location_id": loc, "ts": ts, "temp_c": temps, "rh_pct": rh if rh is not None else [45.0] * n,
                         "lux": lux if lux is not None else [0.0] * n})


def readings(**over):
    base = {"fridge-A": [5.0] * 20, "fridge-B": [5.0] * 20, "fridge-D": [5.0] * 20, "cup-A": [22.0] * 20,
            "freezer-A": [-18.0] * 20}
    base.update(over)
    frames = [series(k, v) for k, v in base.items() if v]
    frames.append(series("fridge-C", [5.0] * 3, end=NOW - pd.Timedelta(hours=2)))   # stopped reporting
    return pd.concat(frames, ignore_index=True)


DRUGS = pd.DataFrame([
    ("insulin", "Insulin", "refrigerated", False, "fridge-A"),
    ("mmr", "MMR vaccine", "refrigerated", True, "fridge-A"),
    ("para", "Paracetamol", "crt", False, "cup-A"),
    ("varicella", "Varicella vaccine", "frozen", True, "freezer-A"),
], columns=["drug_id", "name", "storage_class", "protect_from_light", "location_id"])


def kinds(ev):
    c = ev.conditions
    return sorted(zip(c["kind"], c["location_id"]))


def test_mkt_hand_computed():
    # 20 °C and 30 °C: exp(-10000/293.15)=1.5282e-15, exp(-10000/303.15)=4.7212e-15; mean 3.1247e-15;
    # -ln(mean) = 33.3995; 10000/33.3995 = 299.405 K = 26.26 °C (hand calculation).
    assert mean_kinetic_temperature([20.0, 30.0]) == pytest.approx(26.26, abs=0.01)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-30, 45), min_size=1, max_size=50))
def test_mkt_between_mean_and_max(temps):
    mkt = mean_kinetic_temperature(temps)
    assert np.mean(temps) - 1e-6 <= mkt <= max(temps) + 1e-6


def test_mkt_rejects_empty_and_gaps():
    with pytest.raises(InvalidInput):
        mean_kinetic_temperature([])
    with pytest.raises(InvalidInput):
        mean_kinetic_temperature([20.0, float("nan")])


def test_all_in_range_only_flags_the_silent_logger():
    assert kinds(storage_conditions(LOCS, readings(), DRUGS, NOW)) == [("storage.sensor_silent", "fridge-C")]


TIMED = [  # fridge-A temps (1/min, last one at NOW), expect excursion?, priority
    ("brief warm 10 min", [5.0] * 10 + [9.0] * 10, False, None),
    ("warm 16 min", [5.0] * 4 + [9.0] * 16, True, "medium"),
    ("cold 16 min", [5.0] * 4 + [1.0] * 16, True, "medium"),
    ("freezing once", [5.0] * 19 + [0.0], True, "high"),
    ("way too warm once", [5.0] * 19 + [15.5], True, "high"),
    ("recovered", [9.0] * 19 + [5.0], False, None),
    ("8.0 is in range", [8.0] * 20, False, None),
]


@pytest.mark.parametrize("temps,expected,prio", [t[1:] for t in TIMED], ids=[t[0] for t in TIMED])
def test_fridge_excursions(temps, expected, prio):
    ev = storage_conditions(LOCS, readings(**{"fridge-A": temps}), DRUGS, NOW)
    c = ev.conditions[ev.conditions["kind"] == "storage.excursion"]
    assert (len(c) == 1) == expected
    if expected:
        row = c.iloc[0]
        assert row["location_id"] == "fridge-A" and row["priority"] == prio
        assert row["drug_ids"] == ("insulin", "mmr")
        assert row["suggested_location_id"] == "fridge-B"     # C is nearer but silent; D other floor


def test_fridge_drug_in_warm_cupboard_is_one_misplaced_alarm_not_also_an_excursion():
    drugs = pd.concat([DRUGS, pd.DataFrame([("epo", "Epoetin", "refrigerated", False, "cup-A")],
                                           columns=DRUGS.columns)])
    ev = storage_conditions(LOCS, readings(), drugs, NOW)
    c = ev.conditions.set_index("kind")
    mis = c.loc["storage.drug_misplaced"]
    assert mis["drug_ids"] == ("epo",) and mis["suggested_location_id"] == "fridge-A"
    assert "storage.excursion" not in c.index


def test_crt_humidity_and_light():
    ev = storage_conditions(LOCS, pd.concat([readings(**{"cup-A": []}), series("cup-A", [22.0] * 5, rh=[70.0] * 5)]),
                            DRUGS, NOW)
    row = ev.conditions[ev.conditions["kind"] == "storage.excursion"].iloc[0]
    assert row["location_id"] == "cup-A" and "humidity" in row["message"] and row["priority"] == "low"
    lit = pd.concat([readings(**{"fridge-A": []}), series("fridge-A", [5.0] * 5, lux=[300.0] * 5)])
    row = storage_conditions(LOCS, lit, DRUGS, NOW).conditions.iloc[0]
    assert row["drug_ids"] == ("mmr",) and "light" in row["message"]    # insulin is not light-sensitive


def test_crt_mkt_over_25_flags_even_within_excursion_band():
    ev = storage_conditions(LOCS, readings(**{"cup-A": [28.0] * 20}), DRUGS, NOW)
    row = ev.conditions[ev.conditions["kind"] == "storage.excursion"].iloc[0]
    assert "mean kinetic" in row["message"] and row["priority"] == "medium"


def test_bad_readings_are_rejected_with_reason():
    bad = pd.DataFrame({"location_id": ["fridge-A", "nowhere", "fridge-B"], "ts": [NOW] * 3,
                        "temp_c": [250.0, 5.0, None], "rh_pct": [40.0] * 3})
    ev = storage_conditions(LOCS, pd.concat([readings(), bad]), DRUGS, NOW)
    assert sorted(ev.rejected["reason"].str[:10]) == ["temp_c mis", "temp_c mis", "unknown lo"]
    assert kinds(ev) == [("storage.sensor_silent", "fridge-C")]


def test_missing_columns_and_naive_now():
    with pytest.raises(StorageInputError, match="temp_c"):
        storage_conditions(LOCS, readings().drop(columns="temp_c"), DRUGS, NOW)
    with pytest.raises(InvalidInput):
        storage_conditions(LOCS, readings(), DRUGS, datetime(2025, 3, 1))


def test_conditions_feed_the_engine_as_one_alarm_per_location():
    eng = AlarmEngine()
    for minute in range(3):
        ev = storage_conditions(LOCS, readings(**{"fridge-A": [5.0] * 19 + [0.0]}), DRUGS, NOW + pd.Timedelta(minutes=minute))
        eng.evaluate(ev.conditions, (NOW + pd.Timedelta(minutes=minute)).to_pydatetime(), scope=["storage."])
    assert sorted(a.key for a in eng.open_alarms()) == ["storage.excursion:fridge-A", "storage.sensor_silent:fridge-C"]


def test_excursion_episodes():
    temps = [5.0] * 5 + [9.0] * 3 + [5.0] * 5 + [1.0, 0.5]
    eps = excursion_episodes(series("fridge-A", temps), LOCS, DRUGS)
    assert len(eps) == 2
    first, last = eps.iloc[0], eps.iloc[1]
    assert first["duration_s"] == 180 and first["max_temp_c"] == 9.0 and not first["ongoing"]
    assert last["ongoing"] and last["min_temp_c"] == 0.5 and last["duration_s"] == 60
    assert first["drugs_affected"] == ("insulin", "mmr")
