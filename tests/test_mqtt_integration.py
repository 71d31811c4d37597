"""No loss, no duplicates — against real Mosquitto and PostgreSQL (`source .ci/services.sh`).

* end to end: simulator → broker → ingest → PostgreSQL, every read stored once;
* the ingest process killed with SIGKILL mid-stream and restarted: every published read exactly once;
* a broker restart (private mosquitto with persistence): messages queued for the offline ingest and
  messages published while the broker was away are all stored once;
* the database down for 30 s (a private PostgreSQL cluster, really stopped): nothing acknowledged or
  lost meanwhile, the broker holds the backlog beyond the receive maximum, all stored once after.

Each test uses its own site id (topic namespace) and client ids, so other users of the shared
broker cannot disturb it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pandas as pd
import pytest

from core.config import Settings
from core.feeds.mqtt import MqttIngest, Publisher, location_topic, reads_topic
from core.services import build_pipeline
from core.storage import schema as s
from core.storage.repository import Repository
from tests.helpers import sample_site
from tests.pg_support import (REPO_ROOT, PrivateBroker, PrivateCluster, fresh_pg_schema, mosquitto_bin, mqtt_url,
                              pg_base_url, pg_bin_dir)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class Plan:
    """Deterministic traffic: per tick one omlox message (patients in their beds) and one reader
    envelope (devices at one antenna), one read per tag and second, so every read is kept."""

    def __init__(self, site_id: str, start: datetime, step_s: float = 1.0):
        site = sample_site()
        self.site_id, self.start, self.step_s = site_id, start, step_s
        beds = site.beds.set_index("bed_id")
        pts = site.entities[site.entities["kind"] == "patient"].merge(site.tags, on="entity_id").head(20)
        self.patients = [(r["tag_id"], beds.loc[r["home_id"]]) for _, r in pts.iterrows()]
        dev = site.tags.merge(site.entities, on="entity_id")
        self.devices = dev[(dev["kind"] == "device") & (dev["read_shape"] == "reader")]["tag_id"].head(10).tolist()
        self.antenna = site.readers.iloc[0]
        self.expected: set[tuple[str, int, str]] = set()

    def tick(self, k: int) -> list[tuple[str, bytes]]:
        ts = self.start + timedelta(seconds=k * self.step_s)
        ms = int(ts.timestamp() * 1000)
        locs = [{"position": {"type": "Point", "coordinates": [float(b["cx_m"]), float(b["cy_m"])]}, "provider_id": t,
                 "timestamp_generated": _iso(ts), "floor_id": b["floor_id"], "battery_pct": 90} for t, b in self.patients]
        rid, ant = str(self.antenna["reader_id"]), int(self.antenna["antenna"])
        env = {"reader_id": rid, "seq": k + 1, "ts": _iso(ts),
               "tag_reports": [{"tag_id": t, "antenna": ant, "rssi_dbm": -55.0, "ts": _iso(ts)} for t in self.devices]}
        self.expected |= {(t, ms, f"rtls:{b['floor_id']}") for t, b in self.patients}
        self.expected |= {(t, ms, f"{rid}:{ant}") for t in self.devices}
        return [(location_topic(self.site_id, "it-hub"), orjson.dumps(locs)),
                (reads_topic(self.site_id, rid), orjson.dumps(env))]


def _stored(repo: Repository) -> pd.DataFrame:
    with repo.engine.connect() as conn:
        return pd.DataFrame(conn.execute(s.raw_reads.select().with_only_columns(
            s.raw_reads.c.tag_id, s.raw_reads.c.ts_ms, s.raw_reads.c.origin)).fetchall(),
            columns=["tag_id", "ts_ms", "origin"])


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _assert_exactly_once(repo: Repository, plan: Plan) -> None:
    got = _stored(repo)
    ids = set(map(tuple, got.astype({"ts_ms": "int64"}).itertuples(index=False, name=None)))
    assert len(got) == len(ids)                     # no duplicate rows
    assert ids == plan.expected, (len(ids - plan.expected), len(plan.expected - ids))


def _store(url: str) -> Repository:
    repo = Repository.from_url(url)
    repo.create_schema()
    repo.load_site(sample_site())
    return repo


class InProcessIngest:
    def __init__(self, repo, broker_url: str, site_id: str, client_id: str, **kw):
        self.svc = MqttIngest(build_pipeline(sample_site(), repo, Settings()), mqtt_url=broker_url, site_id=site_id,
                              client_id=client_id, batch_s=0.3, **kw)
        self.thread = threading.Thread(target=self.svc.run, daemon=True)

    def start(self) -> "InProcessIngest":
        self.svc.start()
        _wait_for(lambda: self.svc.status.connected, 15, "the ingest to connect")
        time.sleep(0.5)                               # SUBACK: the subscription exists before we publish
        self.thread.start()
        return self

    def stop(self) -> None:
        self.svc.stop()
        self.thread.join(20)


def _publish(pub: Publisher, plan: Plan, ticks: range, pause_s: float = 0.0) -> None:
    for k in ticks:
        for topic, payload in plan.tick(k):
            pub.publish(topic, payload)
        if pause_s:
            time.sleep(pause_s)


def test_end_to_end_simulator_feed_through_broker_into_postgresql():
    site_id = f"it{uuid.uuid4().hex[:8]}"
    with fresh_pg_schema(pg_base_url()) as url:
        repo = _store(url)
        ingest = InProcessIngest(repo, mqtt_url(), site_id, f"{site_id}-ingest").start()
        pub = Publisher(mqtt_url(), f"{site_id}-pub")
        plan = Plan(site_id, datetime.now(timezone.utc) - timedelta(seconds=20))
        _publish(pub, plan, range(10))
        assert pub.wait_acked(15)
        _wait_for(lambda: len(_stored(repo)) >= len(plan.expected), 30, "all reads stored")
        ingest.stop()
        pub.close()
        _assert_exactly_once(repo, plan)
        stats = repo.feed_stats().set_index("source")
        assert stats.at["mqtt", "accepted"] == len(plan.expected) and stats.at["mqtt", "last_lag_ms"] >= 0
        assert repo.presence()["room_id"].notna().sum() == len(plan.patients) + len(plan.devices)
        repo.engine.dispose()


def _spawn_ingest(db_url: str, broker_url: str, site_id: str, client_id: str, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "core.feeds", "mqtt-ingest", "--db", db_url, "--mqtt", broker_url,
                             "--site", site_id, "--client-id", client_id, "--batch-s", "0.3"],
                            cwd=REPO_ROOT, stdout=log, stderr=log, env={**os.environ, "WARDSIGHT_FEED": "none"})


def _wait_log(path, text: str, count: int, timeout_s: float = 30) -> None:
    _wait_for(lambda: path.exists() and path.read_text(errors="replace").count(text) >= count, timeout_s,
              f"{count}× {text!r} in {path.name}")


def test_ingest_killed_with_sigkill_mid_stream_stores_every_read_exactly_once(tmp_path):
    site_id = f"it{uuid.uuid4().hex[:8]}"
    client = f"{site_id}-ingest"
    log = tmp_path / "ingest.log"
    with fresh_pg_schema(pg_base_url()) as url:
        repo = _store(url)
        first = _spawn_ingest(url, mqtt_url(), site_id, client, log)
        try:
            _wait_log(log, "connected to", 1, 60)
            time.sleep(0.5)
            pub = Publisher(mqtt_url(), f"{site_id}-pub")
            plan = Plan(site_id, datetime.now(timezone.utc) - timedelta(seconds=45))
            _publish(pub, plan, range(0, 20), pause_s=0.05)
            _wait_for(lambda: len(_stored(repo)) > 0, 20, "the first process to store something")
            first.send_signal(signal.SIGKILL)              # mid-stream: more is being published right now
            first.wait(10)
            _publish(pub, plan, range(20, 40), pause_s=0.02)
            at_kill = len(_stored(repo))
            assert 0 < at_kill < len(plan.expected)
            assert pub.wait_acked(15)                         # the broker holds the rest for our session
            second = _spawn_ingest(url, mqtt_url(), site_id, client, log)
            _wait_for(lambda: len(_stored(repo)) >= len(plan.expected), 60, "every read after the restart")
            time.sleep(1.0)                                   # redeliveries still arriving must not add rows
            second.send_signal(signal.SIGTERM)
            second.wait(20)
            pub.close()
            _assert_exactly_once(repo, plan)
        finally:
            for proc in (first, locals().get("second")):
                if proc is not None and proc.poll() is None:
                    proc.kill()
        repo.engine.dispose()


def test_broker_restart_loses_nothing(tmp_path):
    broker = PrivateBroker(mosquitto_bin()).start()
    site_id = f"it{uuid.uuid4().hex[:8]}"
    repo = _store(f"sqlite:///{tmp_path / 'store.db'}")
    pub = Publisher(broker.url, f"{site_id}-pub")
    plan = Plan(site_id, datetime.now(timezone.utc) - timedelta(seconds=35))
    try:
        ingest = InProcessIngest(repo, broker.url, site_id, f"{site_id}-ingest").start()
        _publish(pub, plan, range(0, 10))                   # A: stored live
        assert pub.wait_acked(15)
        _wait_for(lambda: len(_stored(repo)) == len(plan.expected), 20, "batch A")
        ingest.stop()                                        # the ingest goes away (session kept)
        _publish(pub, plan, range(10, 20))                   # B: queued by the broker for the ingest
        assert pub.wait_acked(15)
        broker.restart(down_s=1.0)                           # persistence must carry B over
        _publish(pub, plan, range(20, 30))                   # C: published around the restart
        assert pub.wait_acked(30)
        again = InProcessIngest(repo, broker.url, site_id, f"{site_id}-ingest").start()
        _wait_for(lambda: len(_stored(repo)) >= len(plan.expected), 30, "batches B and C")
        time.sleep(0.8)
        again.stop()
        _assert_exactly_once(repo, plan)
        assert again.svc.status.connects >= 1
    finally:
        pub.close()
        broker.cleanup()


def test_database_down_for_30_s_buffers_and_loses_nothing(tmp_path):
    """A real outage: the private PostgreSQL cluster is stopped for 30 s while reads keep coming."""
    cluster = PrivateCluster(pg_bin_dir())
    cluster.start()
    broker = PrivateBroker(mosquitto_bin()).start()
    site_id = f"it{uuid.uuid4().hex[:8]}"
    receive_max = 20
    repo = _store(cluster.url)
    ingest = InProcessIngest(repo, broker.url, site_id, f"{site_id}-ingest", receive_maximum=receive_max).start()
    pub = Publisher(broker.url, f"{site_id}-pub")
    plan = Plan(site_id, datetime.now(timezone.utc) - timedelta(seconds=5))
    stop = threading.Event()

    def traffic():                                         # one tick per second, like readers do
        k = 0
        while not stop.is_set():
            _publish(pub, plan, range(k, k + 1))
            k += 1
            stop.wait(1.0)

    feeder = threading.Thread(target=traffic, daemon=True)
    try:
        feeder.start()
        _wait_for(lambda: ingest.svc.status.committed_batches >= 2, 20, "normal operation")
        cluster.stop()
        t_down = time.monotonic()
        held = []
        while time.monotonic() - t_down < 30:
            held.append(ingest.svc.status.pending_messages)
            time.sleep(1.0)
        committed_during = ingest.svc.status.committed_batches
        cluster.start()
        outage_s = time.monotonic() - t_down
        time.sleep(2.0)
        stop.set()
        feeder.join(5)
        assert pub.wait_acked(15)
        _wait_for(lambda: ingest.svc.status.pending_messages == 0 and len(_stored(repo)) >= len(plan.expected),
                  60, "the backlog to drain")
        ingest.stop()
        assert outage_s >= 30
        assert ingest.svc.status.storage_errors >= 3                      # retried with back-off
        assert max(held) <= receive_max                                   # back-pressure: the broker kept the rest
        assert max(held) == receive_max                                   # …and there was a rest to keep
        assert committed_during <= ingest.svc.status.committed_batches
        _assert_exactly_once(repo, plan)
    finally:
        stop.set()
        pub.close()
        broker.cleanup()
        repo.engine.dispose()
        cluster.cleanup()
