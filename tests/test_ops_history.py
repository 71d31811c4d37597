"""ops_history: the seeded demo history is deterministic, labelled, inside its window, internally
consistent, and aggregates through core.operations without surprises."""
import numpy as np
import pandas as pd
import pytest

from core import operations as ops
from core import ops_data
from core.alarms.rules import ESCALATION
from core.ops_history import DEMO_NOTE, DEMO_PREFIX, demo_history
from tests.helpers import T0, sample_site

END = pd.Timestamp(T0)
DAYS = 14


@pytest.fixture(scope="module")
def demo():
    return demo_history(sample_site(), END, days=DAYS, seed=7)


def test_same_seed_same_history_other_seed_other_history(demo):
    again = demo_history(sample_site(), END, days=DAYS, seed=7)
    for name in ("alarms", "sessions", "device_intervals", "room_events", "dispenser_events", "stays",
                 "excursions", "disposals", "bins"):
        pd.testing.assert_frame_equal(getattr(demo, name), getattr(again, name), obj=name)
    other = demo_history(sample_site(), END, days=DAYS, seed=8)
    assert not other.alarms["raised_at"].equals(demo.alarms["raised_at"])


def test_history_is_labelled_as_demo(demo):
    assert demo.alarms["alarm_id"].str.startswith(DEMO_PREFIX).all()
    assert demo.bins["bin_id"].str.startswith(DEMO_PREFIX).all()
    assert demo.notes == (DEMO_NOTE,) and "demo" in DEMO_NOTE.lower()


@pytest.mark.parametrize("name,cols", [
    ("alarms", ["raised_at"]), ("room_events", ["ts"]), ("dispenser_events", ["ts"]), ("disposals", ["ts"]),
    ("sessions", ["start", "end"]), ("device_intervals", ["start", "end"]), ("stays", ["start", "end"])],
    ids=["alarms", "room-events", "dispensers", "disposals", "sessions", "devices", "stays"])
def test_everything_happens_inside_the_window(demo, name, cols):
    start = END - pd.Timedelta(days=DAYS)
    df = getattr(demo, name)
    assert len(df) > 0
    for c in cols:
        assert df[c].min() >= start and df[c].max() <= END


def test_alarm_times_and_escalation_are_consistent(demo):
    a = demo.alarms
    ack_s = (a["acknowledged_at"] - a["raised_at"]).dt.total_seconds()
    res_s = (a["resolved_at"] - a["raised_at"]).dt.total_seconds()
    assert (ack_s.dropna() >= 0).all() and (res_s.dropna() >= ack_s[res_s.notna()]).all()
    assert a["acknowledged_at"].dropna().max() < END          # nothing acknowledged in the future
    high = a[(a["priority"] == "high") & ack_s.notna()]
    first, second = np.cumsum(ESCALATION["high"].timeouts_s)
    expected = np.where(ack_s[high.index] > second, 2, np.where(ack_s[high.index] > first, 1, 0))
    assert (high["escalation_level"].to_numpy() == expected).all()


def test_nights_are_slower_and_hygiene_is_lower_at_night(demo):
    d = ops.alarm_durations(demo.alarms, END - pd.Timedelta(days=DAYS), END)
    med = d.groupby("shift")["time_to_ack_s"].median()
    assert med["night"] > med["day"]
    hh = ops.hand_hygiene_compliance(demo.room_events, demo.dispenser_events, END - pd.Timedelta(days=DAYS), END,
                                     by=("shift",))
    rate = hh.set_index("shift")["compliance"]
    assert 0.4 < rate["night"] < rate["day"] < 0.95


def test_device_intervals_tile_each_device_without_overlap(demo):
    d = demo.device_intervals.sort_values(["device_id", "start"])
    prev_end = d.groupby("device_id")["end"].shift()
    assert (d["start"][prev_end.notna()] == prev_end.dropna()).all()
    assert set(d["status"]) == set(ops.DEVICE_STATUSES)


def test_rollup_of_the_demo_counts_every_alarm_once(demo):
    site = sample_site()
    last = END.tz_convert(site.timezone).date()
    start, end = ops_data.day_window(last - pd.Timedelta(days=DAYS - 2), last, site.timezone)
    rollup = ops_data.build_rollup(demo, start, end, site.timezone)
    inside = demo.alarms[(demo.alarms["raised_at"] >= start) & (demo.alarms["raised_at"] < end)]
    assert int(rollup.alarms["alarms"].sum()) == len(inside)
    tables = ops_data.page_tables(demo, rollup, start, end, END, site.timezone, 48.0)
    assert int(tables["escalation"]["alarms"].sum()) == len(inside)
    assert set(tables["occupancy"]["ward_id"]) == set(site.wards["ward_id"])
    assert tables["occupancy"]["occupancy"].between(0.5, 1.0).all()


@pytest.mark.parametrize("end,days", [(pd.Timestamp("2026-01-01"), 5), (END, 0)], ids=["naive-end", "no-days"])
def test_bad_arguments_are_refused(end, days):
    with pytest.raises(ValueError):
        demo_history(sample_site(), end, days=days)
