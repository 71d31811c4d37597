"""Waste rules: wrong bin, wrong place, overdue (WHO limits, 3/4 full) and last handler."""
from __future__ import annotations

import pandas as pd
import pytest

from core.alarms.engine import AlarmEngine
from core.alarms.rules import waste_rules
from core.alarms.waste import WasteInputError, last_handler, waste_conditions

NOW = pd.Timestamp("2025-03-01T12:00:00Z")
H = pd.Timedelta(hours=1)

BINS = pd.DataFrame([
    ("b-sharps", ["sharps"], "sluice", 10.0, NOW - 2 * H),
    ("b-general", "general", "sluice", 80.0, NOW - 2 * H),
    ("b-yellow", "infectious|pathological", "sluice", 20.0, NOW - 60 * H),   # infectious limit 48 h
    ("b-corridor", "general", "corridor", 5.0, NOW - 1 * H),
], columns=["bin_id", "accepts", "room_id", "fill_pct", "opened_at"])
DISPOSAL = {"sluice", "disposal-hold"}


def item(item_id, category, bin_id, room_id, age_h=1.0, seen_h=0.5):
    return (item_id, category, bin_id, room_id, NOW - age_h * H, NOW - seen_h * H)


def items(*rows):
    return pd.DataFrame(rows, columns=["item_id", "category", "bin_id", "room_id", "generated_at", "seen_at"])


def conds(ev, kind):
    c = ev.conditions
    return sorted(c.loc[c["kind"] == kind, "key"])


WRONG_BIN = [("sharps in general", "sharps", "b-general", "high"), ("infectious in general", "infectious", "b-general", "medium"),
             ("general in sharps", "general", "b-sharps", "low"), ("cytotoxic in yellow", "cytotoxic", "b-yellow", "high"),
             ("sharps in sharps", "sharps", "b-sharps", None), ("pathological in yellow", "pathological", "b-yellow", None)]


@pytest.mark.parametrize("cat,bin_id,prio", [w[1:] for w in WRONG_BIN], ids=[w[0] for w in WRONG_BIN])
def test_wrong_bin(cat, bin_id, prio):
    ev = waste_conditions(BINS, items(item("i1", cat, bin_id, "sluice")), DISPOSAL, NOW)
    c = ev.conditions[ev.conditions["kind"] == "waste.wrong_bin"]
    assert len(c) == (prio is not None)
    if prio:
        assert c.iloc[0]["priority"] == prio and c.iloc[0]["bin_id"] == bin_id


def test_wrong_place_bins_and_loose_items():
    ev = waste_conditions(BINS, items(item("i1", "sharps", None, "bay-3"), item("i2", "general", None, "sluice")),
                          DISPOSAL, NOW)
    assert conds(ev, "waste.wrong_place") == ["waste.wrong_place:b-corridor", "waste.wrong_place:i1"]


OVERDUE = [("infectious 49 h", "infectious", 49, True), ("infectious 47 h", "infectious", 47, False),
           ("sharps 6 days", "sharps", 144, False), ("sharps 8 days", "sharps", 192, True),
           ("radioactive never", "radioactive", 10_000, False)]


@pytest.mark.parametrize("cat,age_h,overdue", [o[1:] for o in OVERDUE], ids=[o[0] for o in OVERDUE])
def test_item_overdue_per_category(cat, age_h, overdue):
    ev = waste_conditions(BINS, items(item("i1", cat, None, "sluice", age_h=age_h)), DISPOSAL, NOW)
    assert ("waste.overdue:i1" in conds(ev, "waste.overdue")) == overdue


def test_bins_three_quarters_full_or_open_too_long():
    ev = waste_conditions(BINS, items(), DISPOSAL, NOW)
    assert conds(ev, "waste.overdue") == ["waste.overdue:b-general", "waste.overdue:b-yellow"]


def test_hot_climate_shortens_infectious_limit():
    rules = waste_rules("hot_hot")
    assert rules["infectious"].max_storage_s == 24 * 3600 and waste_rules()["infectious"].max_storage_s == 48 * 3600
    with pytest.raises(ValueError):
        waste_rules("arctic")


def test_last_handler_is_last_staff_in_same_room_before_event():
    trail = pd.DataFrame([("porter-1", "sluice", NOW - 3 * H), ("nurse-2", "sluice", NOW - 0.75 * H),
                          ("nurse-3", "sluice", NOW - 0.25 * H), ("hca-4", "bay-3", NOW - 0.6 * H)],
                         columns=["staff_id", "room_id", "ts"])
    ev = waste_conditions(BINS, items(item("i1", "sharps", "b-general", "sluice", seen_h=0.5)), DISPOSAL, NOW,
                          handler_trail=trail)
    c = ev.conditions.set_index("key").loc["waste.wrong_bin:i1"]
    assert c["details"]["last_handler"] == "nurse-2" and "nurse-2" in c["message"]


def test_last_handler_none_when_nobody_was_there():
    events = pd.DataFrame({"room_id": ["bay-9", None], "event_ts": [NOW, NOW]})
    trail = pd.DataFrame({"staff_id": ["x"], "room_id": ["sluice"], "ts": [NOW - H]})
    assert last_handler(events, trail).isna().all()


def test_bad_items_are_rejected_with_reason():
    ev = waste_conditions(BINS, items(item("i1", "glitter", None, "sluice"), item("i2", "sharps", "b-nope", "sluice")),
                          DISPOSAL, NOW)
    assert list(ev.rejected["reason"]) == ["unknown WHO category", "unknown bin_id"]


def test_missing_columns():
    with pytest.raises(WasteInputError, match="accepts"):
        waste_conditions(BINS.drop(columns="accepts"), items(), DISPOSAL, NOW)


def test_conditions_feed_the_engine():
    ev = waste_conditions(BINS, items(item("i1", "sharps", "b-general", "sluice")), DISPOSAL, NOW)
    eng = AlarmEngine()
    res = eng.evaluate(ev.conditions, NOW.to_pydatetime())
    assert res.rejected == () and len(eng.open_alarms()) == len(ev.conditions) == 4
