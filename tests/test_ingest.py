from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from core.ingest import Registry, parse_json_lines, validate
from tests.helpers import T0, sample_site

SITE = sample_site()
REG = Registry.from_site(SITE)
TAG = SITE.tags["tag_id"].iloc[0]
GOOD_POS = {"ts": pd.Timestamp(T0), "tag_id": TAG, "x_m": 5.0, "y_m": 3.0, "floor_id": "F1"}
GOOD_RDR = {"ts": pd.Timestamp(T0), "tag_id": TAG, "reader_id": "RD-WA-S1", "antenna": 1, "rssi_dbm": -55.0}


@pytest.mark.parametrize("change,reason", [
    ({"tag_id": "E280FFFF"}, "unknown tag E280FFFF"),
    ({"tag_id": None}, "tag_id missing"),
    ({"ts": None}, "ts missing"),
    ({"ts": "2026-11-21T09:00:00"}, "ts is not an ISO 8601 time with a zone"),
    ({"ts": pd.Timestamp(T0 + timedelta(minutes=10))}, "clock skew: ts is 600 s ahead"),
    ({"x_m": None}, "x_m/y_m missing"),
    ({"floor_id": "F9"}, "unknown floor F9"),
    ({"x_m": 500.0}, "position outside the floor plan"),
    ({"x_m": "abc"}, "x_m/y_m missing or not numbers"),
], ids=["unknown-tag", "no-tag", "no-ts", "naive-ts", "clock-skew", "no-x", "unknown-floor", "off-plan", "text-x"])
def test_bad_position_reads_are_quarantined_with_reason(change, reason):
    res = validate(pd.DataFrame([GOOD_POS, {**GOOD_POS, **change}]), REG, T0)
    assert len(res.accepted) == 1, "the good row next to a bad one must be kept"
    assert len(res.quarantine) == 1
    assert reason in res.quarantine["reason"].iloc[0]
    assert res.quarantine["raw"].iloc[0].startswith("{")


@pytest.mark.parametrize("change,reason", [
    ({"rssi_dbm": 42.0}, "rssi_dbm=+42.0 is positive"),
    ({"rssi_dbm": -180.0}, "below -120 dBm"),
    ({"reader_id": "RD-NOPE"}, "unknown reader antenna RD-NOPE:1"),
    ({"antenna": 9}, "unknown reader antenna RD-WA-S1:9"),
], ids=["positive-rssi", "impossible-rssi", "unknown-reader", "unknown-antenna"])
def test_bad_reader_reads_are_quarantined_with_reason(change, reason):
    res = validate(pd.DataFrame([GOOD_RDR, {**GOOD_RDR, **change}]), REG, T0)
    assert len(res.accepted) == 1
    assert reason in res.quarantine["reason"].iloc[0]


def test_duplicates_in_a_batch_keep_one():
    res = validate(pd.DataFrame([GOOD_RDR, GOOD_RDR, GOOD_POS]), REG, T0)
    assert len(res.accepted) == 2
    assert res.quarantine["reason"].tolist() == ["duplicate read (same tag, time and reader in this batch)"]


def test_accepted_reads_are_canonical():
    res = validate(pd.DataFrame([GOOD_RDR, GOOD_POS]), REG, T0)
    a = res.accepted
    assert str(a["ts"].dt.tz) == "UTC"
    assert a["shape"].tolist() == ["reader", "position"]
    assert a["origin"].tolist() == ["RD-WA-S1:1", "rtls:F1"]


def test_json_lines_with_garbage_and_omlox_shape():
    lines = ['{"ts": "2026-11-21T09:00:00Z", "tag_id": "%s", "reader_id": "RD-WA-S1", "antenna": 1, "rssi_dbm": -60}' % TAG,
             "not json {", "[1, 2]", "",
             '{"provider_id": "%s", "position": {"type": "Point", "coordinates": [5, 3]}, '
             '"timestamp_generated": "2026-11-21T09:00:00.250Z", "floor_id": "F1"}' % TAG]
    raw, bad = parse_json_lines(lines, source="file", received_at=T0)
    assert len(raw) == 2
    assert [r.split(":")[0] for r in bad["reason"]] == ["line 2", "line 3", "line 3"]
    res = validate(raw, REG, T0)
    assert len(res.accepted) == 2 and res.accepted["x_m"].iloc[1] == 5


rows = st.fixed_dictionaries({
    "ts": st.one_of(st.none(), st.just(pd.Timestamp(T0)), st.text(max_size=8), st.integers(-10**13, 10**13),
                    st.just("2026-11-21T09:00:01+00:00")),
    "tag_id": st.one_of(st.none(), st.just(TAG), st.text(max_size=6)),
    "reader_id": st.one_of(st.none(), st.just("RD-WA-S1"), st.text(max_size=4)),
    "antenna": st.one_of(st.none(), st.integers(-3, 9), st.floats(allow_nan=True)),
    "rssi_dbm": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3)),
    "x_m": st.one_of(st.none(), st.floats(-1e6, 1e6), st.just(float("nan")), st.text(max_size=3)),
    "y_m": st.one_of(st.none(), st.floats(-1e6, 1e6)),
    "floor_id": st.one_of(st.none(), st.sampled_from(["F1", "F2", "F9", ""])),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=12))
def test_fuzz_every_row_is_accepted_or_quarantined(batch):
    good = [GOOD_POS, GOOD_RDR]
    res = validate(pd.DataFrame(good + batch), REG, T0)
    assert len(res.accepted) + len(res.quarantine) == len(batch) + 2
    assert res.quarantine["reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()
    kept = set(zip(res.accepted["tag_id"], res.accepted["origin"]))
    assert (TAG, "rtls:F1") in kept and (TAG, "RD-WA-S1:1") in kept, "good rows never lost"
    a = res.accepted
    assert a["ts"].notna().all() and a["tag_id"].isin(REG.tag_ids).all()
    assert (a["rssi_dbm"].dropna() <= 0).all()
    assert np.isfinite(a.loc[a["shape"] == "position", ["x_m", "y_m"]].to_numpy(dtype=float)).all()
