"""Infrastructure health (core.health) from reads that went through the real pipeline: silent
readers, low batteries, per-reader clock skew (accepted reads and skew quarantine), ingest rate."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from core import health
from core.config import Settings
from core.services import build_pipeline
from core.storage.repository import Repository
from tests.helpers import sample_site

T = datetime(2026, 11, 21, 9, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
def pipe(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'health.db'}")
    repo.create_schema()
    repo.load_site(sample_site())
    return build_pipeline(sample_site(), repo, Settings())


def _device_tags(n):
    site = sample_site()
    t = site.tags.merge(site.entities, on="entity_id")
    return t[(t["kind"] == "device") & (t["read_shape"] == "reader")]["tag_id"].head(n).tolist()


def _read(tag, reader, antenna, ts, **extra):
    return {"ts": pd.Timestamp(ts), "tag_id": tag, "reader_id": reader, "antenna": antenna, "rssi_dbm": -55.0, **extra}


def test_silent_readers_are_those_without_recent_reads(pipe):
    site = sample_site()
    tags = _device_tags(2)
    heard = [("RD-WA-S1", 1, T - timedelta(seconds=10)), ("RD-WA-S2", 1, T - timedelta(seconds=500))]
    pipe.process(pd.DataFrame([_read(tags[i], r, a, ts) for i, (r, a, ts) in enumerate(heard)]), T)
    rep = health.silent_readers(pipe.repo, site, T, silent_after_s=120)
    by = rep.set_index("origin")
    assert len(rep) == len(site.readers)                        # every expected antenna is listed
    assert not by.at["RD-WA-S1:1", "silent"] and by.at["RD-WA-S1:1", "silent_s"] == pytest.approx(10)
    assert by.at["RD-WA-S2:1", "silent"] and by.at["RD-WA-S2:1", "silent_s"] == pytest.approx(500)
    assert rep["silent"].sum() == 1                             # heard, then quiet too long
    assert rep["never"].sum() == len(site.readers) - 2          # never heard: counted apart, no time
    assert by.at["RD-WA-S1:2", "never"] and not by.at["RD-WA-S1:2", "silent"]
    assert pd.isna(by.at["RD-WA-S1:2", "last_read_ms"])


def test_low_battery_keeps_the_newest_report_per_tag(pipe):
    a, b = _device_tags(2)
    pipe.process(pd.DataFrame([_read(a, "RD-WA-S1", 1, T - timedelta(seconds=20), battery_pct=15.0),
                               _read(b, "RD-WA-S1", 1, T - timedelta(seconds=20), battery_pct=60.0)]), T)
    pipe.process(pd.DataFrame([_read(a, "RD-WA-S1", 1, T - timedelta(seconds=5), battery_pct=12.0)]), T)
    # a late-arriving older report must not overwrite the newer one
    pipe.process(pd.DataFrame([_read(a, "RD-WA-S1", 1, T - timedelta(seconds=40), battery_pct=90.0)]), T)
    low = health.low_battery(pipe.repo, sample_site(), threshold_pct=20)
    assert low["tag_id"].tolist() == [a] and low["battery_pct"].tolist() == [12.0]
    assert low["name"].notna().all()


@pytest.mark.parametrize("value,ok", [(0, True), (100, True), (55.5, True), (-1, False), (101, False), ("x", False)],
                         ids=["zero", "full", "fraction", "negative", "over", "text"])
def test_battery_validation(pipe, value, ok):
    res = pipe.process(pd.DataFrame([_read(_device_tags(1)[0], "RD-WA-S1", 1, T, battery_pct=value)]), T)
    assert (res.accepted, res.quarantined) == ((1, 0) if ok else (0, 1))
    if not ok:
        assert res.quarantine.iloc[0]["reason"] == "battery_pct is not a number 0..100"


def test_clock_skew_per_reader_from_accepted_and_quarantined_reads(pipe):
    tags = _device_tags(3)
    rows = [_read(tags[0], "RD-WA-S1", 1, T - timedelta(seconds=2)),       # 2 s behind
            _read(tags[1], "RD-WA-S1", 1, T - timedelta(seconds=4)),       # 4 s behind
            _read(tags[2], "RD-WA-S2", 1, T + timedelta(seconds=10)),      # ahead, within tolerance
            _read(tags[0], "RD-WA-S3", 1, T + timedelta(minutes=5))]       # ahead: quarantined as skew
    pipe.process(pd.DataFrame(rows), T)
    sk = health.clock_skew(pipe.repo, T).set_index("reader_id")
    assert sk.at["RD-WA-S1", "skew_mean_ms"] == pytest.approx(-3000)
    assert (sk.at["RD-WA-S1", "skew_min_ms"], sk.at["RD-WA-S1", "skew_max_ms"]) == (-4000, -2000)
    assert sk.at["RD-WA-S2", "skew_mean_ms"] == pytest.approx(10_000)
    assert sk.at["RD-WA-S3", "quarantined_skew"] == 1 and sk.at["RD-WA-S3", "reads"] == 0


def test_ingest_rate_counts_reads_per_minute_and_lag(pipe):
    tags = _device_tags(3)
    for k in range(3):
        now = T + timedelta(minutes=k)
        pipe.process(pd.DataFrame([_read(t, "RD-WA-S1", 1, now - timedelta(seconds=1)) for t in tags[:k + 1]]), now)
    rate = health.ingest_rate(pipe.repo, T + timedelta(minutes=3))
    assert rate["reads"].tolist() == [1, 2, 3]
    assert rate["lag_mean_ms"].tolist() == [1000.0, 1000.0, 1000.0]


def test_replay_records_counts_but_not_skew(pipe):
    pipe.health.live = False
    pipe.process(pd.DataFrame([_read(_device_tags(1)[0], "RD-WA-S1", 1, T - timedelta(days=1))]), T)
    assert health.clock_skew(pipe.repo, T).empty
    assert health.ingest_rate(pipe.repo, T + timedelta(minutes=1))["reads"].tolist() == [1]


def test_silent_antennas_fold_per_reader():
    readers = pd.DataFrame({"reader_id": ["R1", "R1", "R1", "R2"], "antenna": [1, 2, 3, 1], "floor_id": "F1",
                            "room_id": ["A", "A", "A", "B"], "last_read_ms": [1000.0, None, 5000.0, 2000.0],
                            "silent_s": [50.0, None, 10.0, 40.0], "silent": [True, True, False, True]})
    out = health.silent_by_reader(readers)
    assert out["reader_id"].tolist() == ["R1", "R2"]              # longest silence first (50 s, 40 s)
    r1 = out.set_index("reader_id").loc["R1"]
    assert r1["antennas"] == "1, 2" and r1["last_read_ms"] == 1000.0     # antenna 3 is not silent
