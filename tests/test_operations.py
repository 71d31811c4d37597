"""Operations aggregates on tiny hand-made frames; expected values are worked out by hand in the
comments (January dates: Europe/London = UTC, so local times equal the UTC times written)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.errors import InvalidInput
from core.operations import (InconsistentTimes, MissingColumns, UnknownStatus, alarm_durations, alarm_load,
                             alarm_response, assign_shift, bed_occupancy, bedside_time, daily_rollup,
                             device_utilisation, escalation_rate, excursion_summary, hand_hygiene_compliance,
                             operations_page, operations_page_raw, par_levels, waste_compliance)

NaT = pd.NaT


def U(s):
    return pd.Timestamp(s, tz="UTC") if isinstance(s, str) else s


def frame(columns, rows, times=()):
    df = pd.DataFrame(rows, columns=columns)
    for c in times:
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    return df


DAY1, DAY2, DAY3 = U("2024-01-10"), U("2024-01-11"), U("2024-01-12")


# -------------------------------------------------------------------------------- shifts

@pytest.mark.parametrize("ts, tz, shift, shift_date", [
    ("2024-01-10 06:59:59", "Europe/London", "night", "2024-01-09"),
    ("2024-01-10 07:00:00", "Europe/London", "day", "2024-01-10"),
    ("2024-01-10 18:59:59", "Europe/London", "day", "2024-01-10"),
    ("2024-01-10 19:00:00", "Europe/London", "night", "2024-01-10"),
    ("2024-07-10 06:30:00", "Europe/London", "day", "2024-07-10"),     # 07:30 BST
    ("2024-07-10 18:30:00", "Europe/London", "night", "2024-07-10"),   # 19:30 BST
    ("2024-01-10 00:00:00", "Asia/Tokyo", "day", "2024-01-10"),        # 09:00 JST
], ids=["before-7", "at-7", "before-19", "at-19", "bst-day", "bst-night", "other-zone"])
def test_assign_shift(ts, tz, shift, shift_date):
    out = assign_shift(pd.Series([U(ts)]), tz)
    assert out.loc[0, "shift"] == shift
    assert out.loc[0, "shift_date"] == pd.Timestamp(shift_date)


def test_assign_shift_refuses_naive():
    with pytest.raises(InvalidInput):
        assign_shift(pd.Series([pd.Timestamp("2024-01-10 08:00")]))


# -------------------------------------------------------------------------------- alarms

ALARM_COLS = ["alarm_id", "kind", "ward_id", "priority", "raised_at", "acknowledged_at", "resolved_at",
              "escalation_level"]
ALARMS = frame(ALARM_COLS, [
    ("a1", "fridge", "W1", "high", "2024-01-10 08:00", "2024-01-10 08:01", "2024-01-10 08:10", 0),   # ack 60, res 600
    ("a2", "fridge", "W1", "high", "2024-01-10 09:00", "2024-01-10 09:03", "2024-01-10 09:20", 1),   # ack 180, res 1200
    ("a3", "fridge", "W1", "low", "2024-01-10 10:00", NaT, NaT, 2),                                   # pending
    ("a4", "news2", "W1", "high", "2024-01-10 20:00", "2024-01-10 20:00:30", "2024-01-10 20:05", 0),  # night, 30 / 300
    ("a5", "fridge", "W2", "low", "2024-01-11 02:00", "2024-01-11 02:00:10", "2024-01-11 02:01", 0),  # night, 10 / 60
    ("a6", "fridge", "W1", "low", "2024-01-09 23:59", "2024-01-10 00:30", NaT, 3),                    # before window
], times=["raised_at", "acknowledged_at", "resolved_at"])
BEDS = pd.DataFrame({"ward_id": ["W1", "W2", "W3"], "beds": [10, 5, 4]})


@pytest.mark.parametrize("kind, ward, shift, metric, expected", [
    # values 60, 180 (+ one pending): median 120, p90 60 + 0.9·120 = 168, mean 120, max 180
    ("fridge", "W1", "day", "time_to_ack_s", [3, 2, 1, 120.0, 168.0, 120.0, 180.0]),
    # values 600, 1200: median 900, p90 600 + 0.9·600 = 1140
    ("fridge", "W1", "day", "time_to_resolve_s", [3, 2, 1, 900.0, 1140.0, 900.0, 1200.0]),
    ("news2", "W1", "night", "time_to_ack_s", [1, 1, 0, 30.0, 30.0, 30.0, 30.0]),
    ("fridge", "W2", "night", "time_to_resolve_s", [1, 1, 0, 60.0, 60.0, 60.0, 60.0]),
], ids=["fridge-W1-day-ack", "fridge-W1-day-resolve", "news2-W1-night-ack", "fridge-W2-night-resolve"])
def test_alarm_response(kind, ward, shift, metric, expected):
    out = alarm_response(ALARMS, DAY1, DAY3).set_index(["kind", "ward_id", "shift", "metric"])
    assert len(out) == 6                                    # 3 groups × 2 metrics; a6 outside the window
    row = out.loc[(kind, ward, shift, metric)]
    assert row[["alarms", "measured", "pending", "median_s", "p90_s", "mean_s", "max_s"]].tolist() == pytest.approx(expected)


def test_alarm_durations_night_after_midnight_keeps_shift_date():
    d = alarm_durations(ALARMS, DAY1, DAY3).set_index("alarm_id")
    assert d.loc["a5", "shift"] == "night" and d.loc["a5", "shift_date"] == pd.Timestamp("2024-01-10")
    assert d.loc["a5", "day"] == pd.Timestamp("2024-01-11")


def test_escalation_rate():
    out = escalation_rate(ALARMS, DAY1, DAY3)
    assert out.values.tolist() == [["fridge", "W1", 3, 2, pytest.approx(2 / 3)], ["fridge", "W2", 1, 0, 0.0],
                                   ["news2", "W1", 1, 0, 0.0]]


def test_alarm_load_per_bed_day():
    out = alarm_load(ALARMS, BEDS, DAY1, DAY3)
    # two days: W1 4 alarms / (10 beds × 2 d) = 0.2; W2 1 / (5 × 2) = 0.1; W3 quiet
    assert out[["ward_id", "alarms", "alarms_per_bed_day"]].values.tolist() == [["W1", 4, 0.2], ["W2", 1, 0.1], ["W3", 0, 0.0]]


@pytest.mark.parametrize("change, error", [
    ({"acknowledged_at": U("2024-01-10 07:59")}, InconsistentTimes),
    ({"resolved_at": U("2024-01-10 07:00")}, InconsistentTimes),
    ({"ward_id": "W9"}, InvalidInput),
], ids=["ack-before-raise", "resolve-before-raise", "ward-without-beds"])
def test_alarm_bad_rows_raise(change, error):
    bad = ALARMS.copy()
    for col, value in change.items():
        bad.loc[0, col] = value
    with pytest.raises(error):
        alarm_load(bad, BEDS, DAY1, DAY3)


def test_missing_columns_and_naive_window():
    with pytest.raises(MissingColumns):
        alarm_response(ALARMS.drop(columns=["kind"]), DAY1, DAY3)
    with pytest.raises(InvalidInput):
        alarm_response(ALARMS, pd.Timestamp("2024-01-10"), DAY3)


# ----------------------------------------------------------------------- storage and waste

def test_excursion_summary():
    x = frame(["location_id", "start", "end", "duration_s", "drugs_affected", "mkt_c"], [
        ("F1", "2024-01-10 01:00", "2024-01-10 01:10", 600, 3, 8.5),
        ("F1", "2024-01-11 03:00", "2024-01-11 03:30", 1800, 2, 9.1),
        ("F2", "2024-01-09 23:00", "2024-01-10 01:00", 7200, 9, 12.0),     # began before the window
        ("F2", "2024-01-10 05:00", "2024-01-10 05:05", 300, 0, 8.2),
    ], times=["start", "end"])
    out = excursion_summary(x, DAY1, DAY3)
    assert out.values.tolist() == [["F1", 2, 2400, 1800, 5, 9.1], ["F2", 1, 300, 300, 0, 8.2]]


DISPOSALS = frame(["ward_id", "ts", "waste_category", "bin_category"], [
    ("W1", "2024-01-10 08:00", "sharps", "sharps"), ("W1", "2024-01-10 09:00", "infectious", "infectious"),
    ("W1", "2024-01-10 10:00", "sharps", "general"), ("W1", "2024-01-11 10:00", "general", "general"),
    ("W2", "2024-01-10 11:00", "sharps", "infectious"), ("W2", "2024-01-11 11:00", "pharma", "general"),
    ("W2", "2024-01-12 11:00", "pharma", "general"),                     # after the window
], times=["ts"])
BINS = frame(["bin_id", "ward_id", "category", "opened_at", "collected_at"], [
    ("b1", "W1", "infectious", "2024-01-07 00:00", NaT),                 # overdue since 01-09
    ("b2", "W1", "infectious", "2024-01-10 12:00", NaT),                 # 48 h only on 01-12 12:00
    ("b3", "W1", "infectious", "2024-01-05 00:00", "2024-01-08 00:00"),  # gone before the window
    ("b4", "W2", "sharps", "2024-01-08 00:00", "2024-01-10 06:00"),      # overdue 00:00–06:00 on 01-10
    ("b5", "W2", "infectious", "2024-01-08 12:00", "2024-01-10 11:00"),  # collected 1 h before 48 h
], times=["opened_at", "collected_at"])


@pytest.mark.parametrize("max_age_h, overdue", [
    (48.0, {"W1": 1, "W2": 1}),
    ({"infectious": 48.0, "sharps": 72.0}, {"W1": 1, "W2": 0}),          # b4 then due 01-11 00:00
    (24.0, {"W1": 2, "W2": 2}),                                           # b5 due 01-09 12:00; b2 due 01-11 12:00 < end
], ids=["who-48h", "per-category", "24h"])
def test_waste_compliance(max_age_h, overdue):
    out = waste_compliance(DISPOSALS, BINS, DAY1, DAY3, max_age_h=max_age_h).set_index("ward_id")
    assert out.loc["W1", ["disposals", "wrong_bin", "bins_open"]].tolist() == [4, 1, 2]
    assert out.loc["W2", ["disposals", "wrong_bin", "bins_open"]].tolist() == [2, 2, 2]
    assert out["wrong_bin_rate"].tolist() == [0.25, 1.0]
    assert out["overdue_bins"].to_dict() == overdue


def test_waste_category_without_limit_raises():
    with pytest.raises(InvalidInput, match="sharps"):
        waste_compliance(DISPOSALS, BINS, DAY1, DAY3, max_age_h={"infectious": 48.0})


# ----------------------------------------------------------------------------------- devices

DEVICE_COLS = ["device_id", "ward_id", "device_type", "status", "start", "end"]
DEVICES = frame(DEVICE_COLS, [
    ("d1", "W1", "pump", "in_use", "2024-01-09 20:00", "2024-01-10 06:00"),   # 6 h inside the window
    ("d1", "W1", "pump", "idle", "2024-01-10 06:00", "2024-01-10 12:00"),     # 6 h
    ("d1", "W1", "pump", "cleaning", "2024-01-10 12:00", "2024-01-10 13:00"), # 1 h
    ("d1", "W1", "pump", "in_use", "2024-01-10 13:00", NaT),                  # open: 11 h to the end
    ("d2", "W1", "pump", "available", "2024-01-10 00:00", "2024-01-11 00:00"),  # 24 h idle
    ("d3", "W2", "scale", "cleaning", "2024-01-10 00:00", "2024-01-10 01:00"),
    ("d4", "W2", "scale", "idle", "2024-01-10 01:00", NaT),
], times=["start", "end"])


def test_device_utilisation_shares():
    out = device_utilisation(DEVICES[DEVICES["device_id"] != "d4"], DAY1, DAY2).set_index(
        ["ward_id", "device_type", "status"])
    # W1 pump: in_use 6+11 h = 61200 s, idle 6+24 h = 108000 s, cleaning 3600 s; total 172800 s
    assert out.loc[("W1", "pump"), "duration_s"].to_dict() == {"in_use": 61200.0, "idle": 108000.0, "cleaning": 3600.0}
    assert out.loc[("W1", "pump", "idle"), "share"] == pytest.approx(108000 / 172800)
    assert out.loc[("W2", "scale"), "share"].to_dict() == {"in_use": 0.0, "idle": 0.0, "cleaning": 1.0}


def test_device_unknown_status_raises():
    bad = DEVICES.copy()
    bad.loc[0, "status"] = "broken"
    with pytest.raises(UnknownStatus):
        device_utilisation(bad, DAY1, DAY2)


@pytest.mark.parametrize("at, w1_pump", [
    ("2024-01-10 12:30", [3, 1, 0, 1, 2, True]),   # d1 cleaning, d2 idle
    ("2024-01-10 12:00", [3, 1, 0, 1, 2, True]),   # boundary: the cleaning interval has started
    ("2024-01-10 14:00", [3, 1, 1, 0, 2, True]),
    ("2024-01-11 00:00", [3, 0, 1, 0, 3, True]),   # d2's interval ended: not claimed available
], ids=["mid-cleaning", "cleaning-starts", "back-in-use", "unknown-not-available"])
def test_par_levels(at, w1_pump):
    par = pd.DataFrame({"ward_id": ["W1", "W2", "W3"], "device_type": ["pump", "scale", "pump"], "par": [3, 1, 2]})
    out = par_levels(DEVICES, par, U(at)).set_index(["ward_id", "device_type"])
    assert out.loc[("W1", "pump")].tolist() == w1_pump
    assert out.loc[("W3", "pump")].tolist() == [2, 0, 0, 0, 2, True]


# -------------------------------------------------------------------------------------- beds

def test_bed_occupancy_merges_overlaps():
    stays = frame(["bed_id", "ward_id", "start", "end"], [
        ("b1", "W1", "2024-01-09 12:00", "2024-01-10 06:00"),
        ("b1", "W1", "2024-01-10 05:00", "2024-01-10 10:00"),   # overlaps: b1 occupied 00:00–10:00 = 36000 s
        ("b2", "W1", "2024-01-10 12:00", NaT),                  # to the end: 43200 s
    ], times=["start", "end"])
    out = bed_occupancy(stays, pd.DataFrame({"ward_id": ["W1", "W2"], "beds": [2, 1]}), DAY1, DAY2)
    assert out[["ward_id", "occupied_bed_s", "capacity_bed_s"]].values.tolist() == [
        ["W1", 79200.0, 172800.0], ["W2", 0.0, 86400.0]]
    assert out["occupancy"].tolist() == pytest.approx([79200 / 172800, 0.0])


# ------------------------------------------------------------------- hand hygiene / bedside

ROOM_EVENTS = frame(["staff_id", "ward_id", "room_id", "ts", "event"], [
    ("s1", "W1", "R1", "2024-01-10 08:00:00", "enter"),   # dispenser 20 s before → yes
    ("s1", "W1", "R1", "2024-01-10 08:10:00", "exit"),    # dispenser exactly 30 s after → yes
    ("s1", "W1", "R2", "2024-01-10 09:00:00", "enter"),   # only s2 used a dispenser → no
    ("s1", "W1", "R2", "2024-01-10 09:05:00", "exit"),    # 31 s after → no
    ("s2", "W1", "R3", "2024-01-10 20:00:00", "enter"),   # night, 5 s after → yes
    ("s3", "W2", "R9", "2024-01-10 21:00:00", "enter"),   # none → no
], times=["ts"])
DISPENSERS = frame(["staff_id", "ts"], [
    ("s1", "2024-01-10 07:59:40"), ("s1", "2024-01-10 08:10:30"), ("s2", "2024-01-10 09:00:05"),
    ("s1", "2024-01-10 09:05:31"), ("s2", "2024-01-10 20:00:05"),
], times=["ts"])


def test_hand_hygiene_compliance():
    out = hand_hygiene_compliance(ROOM_EVENTS, DISPENSERS, DAY1, DAY2)
    assert out.values.tolist() == [["W1", "day", 4, 2, 0.5], ["W1", "night", 1, 1, 1.0], ["W2", "night", 1, 0, 0.0]]


def test_hand_hygiene_rejects_unknown_event():
    bad = ROOM_EVENTS.assign(event=["enter", "exit", "enter", "exit", "enter", "visit"])
    with pytest.raises(InvalidInput, match="visit"):
        hand_hygiene_compliance(bad, DISPENSERS, DAY1, DAY2)


SESSIONS = frame(["staff_id", "ward_id", "start", "end"], [
    ("s1", "W1", "2024-01-10 08:00", "2024-01-10 08:10"), ("s1", "W1", "2024-01-10 09:00", "2024-01-10 09:20"),
    ("s2", "W1", "2024-01-10 10:00", "2024-01-10 10:05"), ("s2", "W1", "2024-01-10 20:00", "2024-01-10 20:30"),
    ("s3", "W2", "2024-01-09 23:50", "2024-01-10 00:10"),          # clipped to 600 s, night
], times=["start", "end"])


def test_bedside_time_per_ward_and_shift():
    out = bedside_time(SESSIONS, DAY1, DAY2)
    # W1 day: 600 + 1200 + 300 = 2100 s over 3 sessions by 2 people
    assert out.values.tolist() == [["W1", "day", 3, 2, 2100.0, 700.0, 1050.0],
                                   ["W1", "night", 1, 1, 1800.0, 1800.0, 1800.0],
                                   ["W2", "night", 1, 1, 600.0, 600.0, 600.0]]
    assert "staff_id" not in out.columns


def test_bedside_end_before_start_raises():
    bad = SESSIONS.copy()
    bad.loc[0, "end"] = U("2024-01-10 07:00")
    with pytest.raises(InconsistentTimes):
        bedside_time(bad, DAY1, DAY2)


# ------------------------------------------------------------------------------------ rollup

@pytest.fixture(scope="module")
def rollup():
    return daily_rollup(ALARMS, SESSIONS, DEVICES, ROOM_EVENTS, DISPENSERS, U("2024-01-09"), DAY3)


def test_rollup_page_matches_raw(rollup):
    page = operations_page(rollup, BEDS, DAY1, DAY3)
    raw = operations_page_raw(ALARMS, SESSIONS, DEVICES, ROOM_EVENTS, DISPENSERS, BEDS, DAY1, DAY3)
    pd.testing.assert_frame_equal(page["escalation"], raw["escalation"], check_dtype=False)
    pd.testing.assert_frame_equal(page["alarm_load"], raw["alarm_load"], check_dtype=False)
    pd.testing.assert_frame_equal(page["hand_hygiene"], raw["hand_hygiene"], check_dtype=False)
    pd.testing.assert_frame_equal(page["device_utilisation"], raw["device_utilisation"], check_dtype=False)
    pd.testing.assert_frame_equal(page["daily_alarms"], raw["daily_alarms"], check_dtype=False)
    bed_cols = ["ward_id", "shift", "sessions", "bedside_s", "mean_session_s"]
    pd.testing.assert_frame_equal(page["bedside"][bed_cols], raw["bedside"][bed_cols], check_dtype=False)


def test_rollup_response_buckets(rollup):
    out = operations_page(rollup, BEDS, DAY1, DAY3)["alarm_response"].set_index(["kind", "ward_id", "shift", "metric"])
    row = out.loc[("fridge", "W1", "day", "time_to_ack_s")]
    # ack 60 s and 180 s: the median (120 s, interpolated) is only bounded by the bucket of the upper
    # middle value (≤ 300 s); the p90 likewise; the mean is exact
    assert row[["alarms", "measured", "pending", "mean_s", "median_le_s", "p90_le_s"]].tolist() == [3, 2, 1, 120.0, 300.0, 300.0]


def test_rollup_day_split_of_device_interval(rollup):
    d1 = rollup.devices[(rollup.devices["ward_id"] == "W1") & (rollup.devices["status"] == "in_use")]
    # 2024-01-09 20:00 → 01-10 06:00 is cut at midnight: 4 h on the 9th; 6 h + 11 h (from 13:00) on the 10th
    assert dict(zip(d1["day"].dt.strftime("%m-%d"), d1["duration_s"])) == {"01-09": 14400.0, "01-10": 61200.0,
                                                                              "01-11": 86400.0}


def test_rollup_needs_whole_days(rollup):
    with pytest.raises(InvalidInput, match="midnight"):
        operations_page(rollup, BEDS, U("2024-01-10 06:00"), DAY3)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 86_400 - 1), st.sampled_from(["W1", "W2"]),
                          st.sampled_from(["fridge", "news2"]), st.one_of(st.none(), st.integers(0, 4000)),
                          st.integers(0, 3)), min_size=1, max_size=40))
def test_rollup_alarm_counts_and_means_equal_raw(rows):
    raised = [DAY1 + pd.Timedelta(seconds=t) for t, *_ in rows]
    alarms = pd.DataFrame({
        "alarm_id": [f"a{i}" for i in range(len(rows))], "kind": [k for _, _, k, _, _ in rows],
        "ward_id": [w for _, w, _, _, _ in rows], "priority": "high", "raised_at": raised,
        "acknowledged_at": [r + pd.Timedelta(seconds=a) if a is not None else NaT for r, (_, _, _, a, _) in zip(raised, rows)],
        "resolved_at": NaT, "escalation_level": [e for *_, e in rows]})
    alarms["acknowledged_at"] = pd.to_datetime(alarms["acknowledged_at"], utc=True)
    alarms["resolved_at"] = pd.to_datetime(alarms["resolved_at"], utc=True)
    roll = daily_rollup(alarms, SESSIONS.iloc[:0], DEVICES.iloc[:0], ROOM_EVENTS.iloc[:0], DISPENSERS.iloc[:0],
                        DAY1, DAY1 + pd.Timedelta(days=3))
    page = operations_page(roll, BEDS, DAY2, DAY3)["alarm_response"]
    raw = alarm_response(alarms, DAY2, DAY3)
    keys = ["kind", "ward_id", "shift", "metric"]
    merged = page.merge(raw, on=keys, suffixes=("_roll", "_raw"), how="outer")
    assert (merged["alarms_roll"] == merged["alarms_raw"]).all()
    assert (merged["measured_roll"] == merged["measured_raw"]).all()
    np.testing.assert_allclose(merged["mean_s_roll"], merged["mean_s_raw"])
    # the raw median always lies at or below the rollup's bucket edge
    has = merged["measured_raw"] > 0
    assert (merged.loc[has, "median_s"] <= merged.loc[has, "median_le_s"]).all()
