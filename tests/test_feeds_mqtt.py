"""MQTT feed without a broker: topics, payload decoding, signatures, and the ingest service's
batching, acknowledgement, redelivery and storage-outage behaviour (a fake client records acks; a
repository wrapper fails on demand). The same paths against real Mosquitto/PostgreSQL are in
tests/test_mqtt_integration.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
import pandas as pd
import pytest

from core.config import Settings
from core.errors import StorageError
from core.feeds.buffer import Backoff
from core.feeds.mqtt import (Message, MqttIngest, decode, location_topic, messages_for, parse_topic, reads_topic,
                             subscriptions)
from core.feeds.simulator import HospitalSimulator
from core.security import signing
from core.services import build_pipeline
from core.storage import schema as s
from core.storage.repository import Repository
from tests.helpers import sample_site

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
SITE = "stmarys"


@pytest.mark.parametrize("topic,expected", [
    ("wardsight/stmarys/RD-WA-S1/reads", ("stmarys", "reads", "RD-WA-S1")),
    ("wardsight/stmarys/rtls/uwb-hub/location", ("stmarys", "location", "uwb-hub")),
    ("wardsight/stmarys/RD-WA-S1/read", None),
    ("wardsight/stmarys//reads", None),
    ("other/stmarys/RD-WA-S1/reads", None),
    ("wardsight/stmarys/rtls/location", None),
], ids=["reads", "location", "wrong-suffix", "empty-reader", "wrong-root", "no-provider"])
def test_parse_topic(topic, expected):
    got = parse_topic(topic)
    assert (None if got is None else (got.site_id, got.kind, got.sender)) == expected


def test_topic_builders_match_subscriptions():
    import paho.mqtt.client as mqtt
    subs = subscriptions(SITE)
    for topic in (reads_topic(SITE, "R1"), location_topic(SITE, "hub")):
        assert any(mqtt.topic_matches_sub(sub, topic) for sub in subs)
    assert not any(mqtt.topic_matches_sub(sub, reads_topic("othersite", "R1")) for sub in subs)


def _msg(topic: str, body, mid: int = 1, dup: bool = False) -> Message:
    return Message(topic, body if isinstance(body, bytes) else orjson.dumps(body), mid, 1, dup)


READ = {"tag_id": "T1", "antenna": 1, "rssi_dbm": -60.0, "ts": "2026-11-21T08:59:59.500Z"}


@pytest.mark.parametrize("topic,payload,n_rows,reason", [
    (reads_topic(SITE, "R1"), READ, 1, None),
    (reads_topic(SITE, "R1"), [READ, {**READ, "tag_id": "T2"}], 2, None),
    (reads_topic(SITE, "R1"), {"reader_id": "R1", "seq": 1, "ts": "2026-11-21T09:00:00Z", "tag_reports": [READ, READ]}, 2, None),
    (reads_topic(SITE, "R1"), {**READ, "reader_id": "R2"}, 0, "reader_id R2 does not match the topic's reader R1"),
    (reads_topic(SITE, "R1"), b"{nope", 0, "not JSON"),
    (reads_topic(SITE, "R1"), [1], 0, "a message item must be a JSON object"),
    (reads_topic(SITE, "R1"), {"reader_id": "R1", "tag_reports": "x"}, 0, "tag_reports/locations must be a list"),
    (reads_topic("elsewhere", "R1"), READ, 0, "topic wardsight/elsewhere/R1/reads is not"),
    (location_topic(SITE, "hub"), {"position": {"type": "Point", "coordinates": [1.5, 2.5]}, "provider_id": "T9",
                                   "timestamp_generated": "2026-11-21T09:00:00Z", "floor_id": "F1"}, 1, None),
], ids=["flat", "array", "envelope", "reader-mismatch", "not-json", "not-object", "reports-not-list",
        "other-site", "omlox"])
def test_decode(topic, payload, n_rows, reason):
    d = decode([_msg(topic, payload)], site_id=SITE, now=NOW)
    assert len(d.raw) == n_rows
    if reason is None:
        assert d.quarantine.empty
    else:
        assert len(d.quarantine) == 1 and d.quarantine.iloc[0]["reason"].startswith(reason)
        assert d.quarantine.iloc[0]["source"] == "mqtt"


def test_decode_fills_reader_and_envelope_time():
    env = {"reader_id": "R1", "seq": 1, "ts": "2026-11-21T09:00:00Z", "tag_reports": [{"tag_id": "T1", "antenna": 2, "rssi_dbm": -50}]}
    row = decode([_msg(reads_topic(SITE, "R1"), env)], site_id=SITE, now=NOW).raw.iloc[0]
    assert row["reader_id"] == "R1" and row["ts"] == "2026-11-21T09:00:00Z" and row["antenna"] == 2


KEYS = {"R1": "key-one", "R2": "key-two"}


def _signed(seq: int, reader: str = "R1", key: str | None = None, **extra) -> dict:
    body = {"reader_id": reader, "seq": seq, "ts": "2026-11-21T09:00:00Z", "tag_reports": [READ], **extra}
    return signing.sign(body, key or KEYS[reader])


@pytest.mark.parametrize("body,reason", [
    (_signed(5), None),
    ({"reader_id": "R1", "seq": 5, "ts": "2026-11-21T09:00:00Z", "tag_reports": [READ]}, "signature: unsigned"),
    ({**_signed(5), "tag_reports": [{**READ, "rssi_dbm": -30.0}]}, "signature: bad signature"),
    (_signed(5, key="not-the-key"), "signature: bad signature"),
    (_signed(5, reader="R2"), "signature: signed by R2 but published on R1's topic"),
    (_signed(2), "signature: replayed sequence"),
    ({**_signed(5), "ts": "2026-11-21T08:50:00Z"}, "signature: bad signature"),
], ids=["good", "unsigned", "tampered", "wrong-key", "other-reader", "replayed", "ts-edited"])
def test_signed_messages(body, reason):
    d = decode([_msg(reads_topic(SITE, "R1"), body)], site_id=SITE, now=NOW, keys=KEYS, last_seq={"R1": 3})
    if reason is None:
        assert len(d.raw) == 1 and d.quarantine.empty and d.last_seq["R1"] == 5
        assert "sig" not in d.raw.columns
    else:
        assert d.raw.empty and d.quarantine.iloc[0]["reason"] == reason
        assert d.last_seq.get("R1") == 3        # a rejected message never moves the replay mark


def test_messages_for_roundtrip_through_decode():
    """What publish-sim sends decodes back to the simulator's reads (same tags, times, values)."""
    site = sample_site()
    sim = HospitalSimulator(site, seed=5, fault_rate=0.0)
    reads = sim.step(NOW)
    seq: dict[str, int] = {}
    msgs = [_msg(t, p) for t, p in messages_for(reads, SITE, NOW, seq)]
    d = decode(msgs, site_id=SITE, now=NOW)
    assert d.quarantine.empty and len(d.raw) == len(reads)
    got = d.raw.assign(ts=pd.to_datetime(d.raw["ts"], utc=True, format="ISO8601"))
    key = ["tag_id", "ts"]
    want = reads.assign(ts=reads["ts"].dt.floor("ms")).sort_values(key, ignore_index=True)
    got = got.sort_values(key, ignore_index=True)
    assert (got["tag_id"].to_numpy() == want["tag_id"].to_numpy()).all()
    assert (got["ts"].to_numpy() == want["ts"].to_numpy()).all()
    pd.testing.assert_series_equal(got["x_m"].astype(float), want["x_m"].astype(float), check_names=False)
    assert set(seq) == set(reads["reader_id"].dropna()) | {"sim-rtls"}


# ---------------------------------------------------------------- the service, without a broker
class FakeClient:
    def __init__(self):
        self.acked: list[int] = []

    def ack(self, mid, qos):
        self.acked.append(mid)

    def disconnect(self):
        pass

    def loop_stop(self):
        pass


class FlakyRepo:
    """A Repository whose writes fail while `down` (an accelerated database outage)."""

    def __init__(self, repo: Repository):
        self._repo, self.down, self.failures = repo, False, 0

    def __getattr__(self, name):
        return getattr(self._repo, name)

    def _check(self):
        if self.down:
            self.failures += 1
            raise StorageError("database error: OperationalError: connection refused (simulated)")

    def write_tick(self, **kw):
        self._check()
        return self._repo.write_tick(**kw)

    def presence(self, *a, **kw):
        self._check()
        return self._repo.presence(*a, **kw)


@dataclass
class PahoMsg:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1
    dup: bool = False


def _service(tmp_path, name: str, flaky: bool = False):
    repo = Repository.from_url(f"sqlite:///{tmp_path / name}")
    repo.create_schema()
    repo.load_site(sample_site())
    store = FlakyRepo(repo) if flaky else repo
    svc = MqttIngest(build_pipeline(sample_site(), store, Settings()), mqtt_url="mqtt://127.0.0.1:1", site_id=SITE,
                     client_id="test", batch_s=0.0, clock=lambda: NOW + timedelta(seconds=30))
    svc.client = FakeClient()
    svc._backoff = Backoff(0.0, 0.0)            # accelerated: retry at once
    return svc, store


def _sim_messages(ticks: int, start: int = 0) -> list[PahoMsg]:
    sim = HospitalSimulator(sample_site(), seed=11, fault_rate=0.0)
    seq: dict[str, int] = {}
    out = []
    for k in range(ticks):
        now = NOW + timedelta(seconds=k)
        for topic, payload in messages_for(sim.step(now), SITE, now, seq):
            out.append(PahoMsg(topic, payload, len(out) + 1 + start))
    return out


def _feed(svc, msgs, steps: int = 3):
    for m in msgs:
        svc._on_message(None, None, m)
    for _ in range(steps):
        svc.step()


def _stored(store) -> tuple[pd.DataFrame, pd.DataFrame]:
    with store.engine.connect() as conn:
        raw = pd.DataFrame(conn.execute(s.raw_reads.select()).fetchall())
        ch = pd.DataFrame(conn.execute(s.presence_changes.select()).fetchall())
    return (raw.sort_values(["tag_id", "ts_ms", "origin"], ignore_index=True),
            ch.drop(columns=["id"]).sort_values(["tag_id", "ts_ms"], ignore_index=True))


def test_ack_only_after_commit_and_redelivered_copies_are_not_stored_twice(tmp_path):
    svc, store = _service(tmp_path, "a.db")
    msgs = _sim_messages(3)
    for m in msgs:
        svc._on_message(None, None, m)
    assert svc.client.acked == []                       # received, not yet stored: nothing acknowledged
    svc._on_message(None, None, PahoMsg(msgs[0].topic, msgs[0].payload, msgs[0].mid, dup=True))
    svc.step()
    svc.step()
    assert sorted(svc.client.acked) == [m.mid for m in msgs]     # each packet id once; the pending copy rides along
    n = store.table_count(s.raw_reads)
    changes = store.table_count(s.presence_changes)
    _feed(svc, [PahoMsg(m.topic, m.payload, 900 + i, dup=True) for i, m in enumerate(msgs)])   # after a reconnect
    assert store.table_count(s.raw_reads) == n and store.table_count(s.presence_changes) == changes
    assert svc.status.redelivered == 1 + len(msgs)
    assert sorted(svc.client.acked)[-len(msgs):] == [900 + i for i in range(len(msgs))]


def test_new_process_after_crash_stores_redelivered_batch_once(tmp_path):
    """A crash after the commit but before the acks: the next process gets the batch again and
    neither stores reads twice nor repeats presence changes (identity look-up + tracker restore)."""
    svc, store = _service(tmp_path, "b.db")
    msgs = _sim_messages(4)
    _feed(svc, msgs)
    before = _stored(store)
    again, _ = _service(tmp_path, "b.db")               # fresh process, same database
    _feed(again, [PahoMsg(m.topic, m.payload, m.mid, dup=True) for m in msgs])
    after = _stored(store)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])
    assert sorted(again.client.acked) == [m.mid for m in msgs]


def test_storage_outage_holds_batches_and_loses_nothing(tmp_path):
    """Writes fail for a while (accelerated outage): nothing is acknowledged, batches are kept in
    order and retried; afterwards the store equals a run that never failed."""
    msgs = _sim_messages(8)
    ref, ref_store = _service(tmp_path, "ref.db")
    _feed(ref, msgs, steps=5)
    svc, store = _service(tmp_path, "flaky.db", flaky=True)
    _feed(svc, msgs[:10])
    acked_before = list(svc.client.acked)
    store.down = True
    _feed(svc, msgs[10:], steps=6)
    assert svc.client.acked == acked_before and svc.status.storage_errors >= 1
    assert svc.status.pending_messages == len(msgs) - 10
    store.down = False
    for _ in range(5):
        svc.step()
    assert sorted(svc.client.acked) == [m.mid for m in msgs] and svc.status.pending_messages == 0
    got, want = _stored(store), _stored(ref_store)
    pd.testing.assert_frame_equal(got[0], want[0])
    pd.testing.assert_frame_equal(got[1], want[1])
