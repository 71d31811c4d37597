"""The repository and the pipeline on both backends: every test here runs on SQLite and, when
WARDSIGHT_PG_URL is set (`source .ci/services.sh`), on PostgreSQL in a fresh schema."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from core.config import Settings
from core.services import build_pipeline
from core.storage import schema as s
from core.storage.repository import Repository
from tests.helpers import T0, run_feed, sample_site
from tests.pg_support import fresh_pg_schema, pg_base_url

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def repo(request, tmp_path):
    """An empty store with the sample site loaded, on each backend."""
    if request.param == "sqlite":
        r = Repository.from_url(f"sqlite:///{tmp_path / 'store.db'}")
        r.create_schema()
        r.load_site(sample_site())
        yield r
        r.engine.dispose()
        return
    with fresh_pg_schema(pg_base_url()) as url:
        r = Repository.from_url(url)
        r.create_schema()
        r.load_site(sample_site())
        yield r
        r.engine.dispose()


def _reads(n: int, origin: str = "rtls:F1") -> pd.DataFrame:
    tags = sample_site().tags["tag_id"].astype(str).to_numpy()[:n]
    return pd.DataFrame({"tag_id": tags, "ts_ms": T0.timestamp() * 1000 + np.arange(n), "origin": origin,
                         "rssi_dbm": np.nan, "x_m": 1.0, "y_m": 2.0, "floor_id": "F1", "room_id": "WA-S1",
                         "bed_id": None}).astype({"ts_ms": "int64"})


def _empty_like(cols) -> pd.DataFrame:
    return pd.DataFrame(columns=cols)


def _write(repo, reads, now=T0):
    repo.write_tick(reads=reads, presence=_empty_like([]), changes=_empty_like([]),
                    quarantine=_empty_like(["source", "reason", "raw"]), source="test", now=now)


def test_same_batch_twice_is_stored_once(repo):
    reads = _reads(20)
    _write(repo, reads)
    _write(repo, reads)
    assert repo.table_count(s.raw_reads) == 20


def test_existing_reads_finds_exactly_the_stored_identities(repo):
    stored, fresh = _reads(10), _reads(10, origin="RD-WA-S1:1")
    _write(repo, stored)
    probe = pd.concat([stored.iloc[::2], fresh], ignore_index=True)
    found = repo.existing_reads(probe)
    assert sorted(found["ts_ms"]) == sorted(stored.iloc[::2]["ts_ms"])
    assert set(found["origin"]) == {"rtls:F1"}


def test_last_read_per_origin_and_lag(repo):
    reads = pd.concat([_reads(5, "RD-WA-S1:1"), _reads(3, "RD-WA-S1:2")], ignore_index=True)
    _write(repo, reads)
    last = repo.last_read_per_origin(["RD-WA-S1:1", "RD-WA-S1:2", "RD-NEVER:1"]).set_index("origin")["last_read_ms"]
    base = int(T0.timestamp() * 1000)
    assert last.to_dict() == {"RD-WA-S1:1": base + 4, "RD-WA-S1:2": base + 2}
    repo.record_lag("test", 1234)
    assert repo.feed_stats().set_index("source").at["test", "last_lag_ms"] == 1234


def test_presence_upsert_keeps_one_row_per_tag(repo):
    tag = sample_site().tags.iloc[0]
    row = {"tag_id": tag["tag_id"], "entity_id": tag["entity_id"], "floor_id": "F1", "room_id": "WA-S1",
           "bed_id": None, "x_m": 1.0, "y_m": 1.0, "since_ms": 1, "last_seen_ms": 2}
    for k, room in enumerate(["WA-S1", "WA-S2"]):
        repo.write_tick(reads=None, presence=pd.DataFrame([{**row, "room_id": room, "last_seen_ms": 10 + k}]),
                        changes=_empty_like([]), quarantine=_empty_like(["source", "reason", "raw"]),
                        source="test", now=T0)
    p = repo.presence()
    assert len(p) == 1 and p.iloc[0]["room_id"] == "WA-S2" and p.iloc[0]["last_seen_ms"] == 11


def test_pipeline_feed_roundtrip(repo):
    """The simulator through the real pipeline: reads, presence, changes and quarantine are stored
    and read back consistently on this backend."""
    pipe = run_feed(repo, sample_site(), 12, fault_rate=0.02)
    n_raw = repo.table_count(s.raw_reads)
    assert n_raw > 500
    p = repo.presence()
    assert len(p) == len(pipe.tracker.snapshot())
    assert (p["last_seen_ms"] >= p["since_ms"]).all()
    stats = repo.feed_stats().set_index("source")
    assert stats.at["sim", "accepted"] == n_raw            # no raw read was skipped or counted twice
    assert stats.at["sim", "quarantined"] == repo.table_count(s.quarantine) > 0
    who = p.iloc[0]["entity_id"]
    place = repo.place_at(who, int(p.iloc[0]["last_seen_ms"]))
    assert place is not None and place["entity_id"] == who


def test_purge_deletes_only_older_reads(repo):
    _write(repo, _reads(10))
    cut = int(T0.timestamp() * 1000) + 4
    assert repo.purge_raw_reads(cut) == 4
    assert repo.table_count(s.raw_reads) == 6


@pytest.mark.integration
def test_sqlite_and_postgresql_store_the_same_feed(tmp_path):
    """Same seeded feed on both backends → identical raw reads and presence changes."""
    site = sample_site()
    stores = [Repository.from_url(f"sqlite:///{tmp_path / 'a.db'}")]
    with fresh_pg_schema(pg_base_url()) as url:
        stores.append(Repository.from_url(url))
        out = []
        for r in stores:
            r.create_schema()
            r.load_site(site)
            run_feed(r, site, 15, fault_rate=0.01, start=T0 + timedelta(hours=1))
            with r.engine.connect() as conn:
                raw = pd.DataFrame(conn.execute(select(s.raw_reads.c.tag_id, s.raw_reads.c.ts_ms, s.raw_reads.c.origin,
                                                       s.raw_reads.c.room_id)).fetchall())
                ch = pd.DataFrame(conn.execute(select(s.presence_changes.c.tag_id, s.presence_changes.c.ts_ms,
                                                      s.presence_changes.c.room_id)).fetchall())
            out.append((raw.sort_values(list(raw.columns), ignore_index=True),
                        ch.sort_values(list(ch.columns), ignore_index=True)))
            r.engine.dispose()
    pd.testing.assert_frame_equal(out[0][0], out[1][0], check_dtype=False)
    pd.testing.assert_frame_equal(out[0][1], out[1][1], check_dtype=False)


def test_settings_defaults_document_new_settings():
    """The issue-6 settings exist with an env name and a description (the README table reads them)."""
    from core.config import SETTINGS
    for env in ("WARDSIGHT_MQTT_CLIENT_ID", "WARDSIGHT_INGEST_BATCH_S", "WARDSIGHT_READER_SILENT_S",
                "WARDSIGHT_LOW_BATTERY_PCT"):
        assert SETTINGS[env]
    assert Settings.from_env({"WARDSIGHT_READER_SILENT_S": "45"}).reader_silent_s == 45.0


def test_health_tables_on_this_backend(repo):
    """The health hook's upserts (accumulating minutes, newest battery) behave the same on both."""
    from core import health
    site = sample_site()
    pipe = build_pipeline(site, repo, Settings())
    t = site.tags.merge(site.entities, on="entity_id")
    tag = t[(t["kind"] == "device") & (t["read_shape"] == "reader")]["tag_id"].iloc[0]
    for k, (lag_s, batt) in enumerate([(2, 40.0), (4, 10.0)]):
        now = T0 + timedelta(seconds=10 * k)
        pipe.process(pd.DataFrame([{"ts": pd.Timestamp(now - timedelta(seconds=lag_s)), "tag_id": tag,
                                    "reader_id": "RD-WA-S1", "antenna": 1, "rssi_dbm": -50.0, "battery_pct": batt}]), now)
    sk = health.clock_skew(repo, T0 + timedelta(seconds=20)).set_index("reader_id")
    assert sk.at["RD-WA-S1", "reads"] == 2 and sk.at["RD-WA-S1", "skew_mean_ms"] == pytest.approx(-3000)
    assert (sk.at["RD-WA-S1", "skew_min_ms"], sk.at["RD-WA-S1", "skew_max_ms"]) == (-4000, -2000)
    assert health.low_battery(repo, site, 20)["battery_pct"].tolist() == [10.0]
