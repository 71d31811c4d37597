"""MQTT feed: topic layout, payload decoding (with optional HMAC signatures), the ingest service and
the simulator publisher.

Topics (one site per ingest service; `<site>` is WARDSIGHT_SITE):

    wardsight/<site>/<reader_id>/reads              LLRP-shaped tag reports of one fixed reader
    wardsight/<site>/rtls/<provider>/location       omlox Location-shaped position updates of an RTLS engine

Payloads are JSON: one object or an array of objects. An object is either a flat read, or an
envelope (what a signing reader sends; see core.security.signing)

    {"reader_id": "F1-R03", "seq": 1042, "ts": "2026-11-21T09:00:01.000Z",
     "tag_reports": [{"tag_id": "E2801160600002084E11A1C3", "antenna": 1, "rssi_dbm": -57.5,
                      "ts": "2026-11-21T09:00:00.812Z", "battery_pct": 87}],
     "sig": "<hex HMAC-SHA256>"}

    {"reader_id": "sim-rtls", "seq": 77, "ts": …, "locations": [{"position": {"type": "Point",
     "coordinates": [12.4, 6.1]}, "provider_id": "BLE-0042", "timestamp_generated": …, "floor_id": "F1"}]}

A report without `reader_id` takes the topic's; a report naming another reader than its topic is
quarantined. When any reader key is configured (table reader_keys), every message must be a signed
envelope whose `reader_id` is the topic's reader (or RTLS provider); unsigned, tampered, replayed or
out-of-window messages are quarantined with the reason.

Delivery guarantees: QoS 1 on a persistent session (fixed client id, clean_start False, session
expiry 7 days), acknowledged manually only after the batch holding the message is committed. A crash
before the commit means the broker delivers the message again; the read identity makes storing it
idempotent. While the database is down, batches are retried with back-off and nothing is
acknowledged: the broker holds the rest (receive maximum), which is the back-pressure.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlparse

import numpy as np
import orjson
import pandas as pd

from core.errors import FeedError, StorageError
from core.feeds.buffer import Backoff, Batch, Committer, install_idempotency
from core.ingest import omlox_read
from core.models import QUARANTINE_COLUMNS, to_ms
from core.pipeline import Pipeline
from core.security import signing

log = logging.getLogger(__name__)

QOS = 1
SOURCE = "mqtt"
SESSION_EXPIRY_S = 7 * 24 * 3600     # the broker keeps our queue this long while the ingest is down
RECEIVE_MAXIMUM = 2000               # un-acknowledged messages the broker may have in flight to us
KEYS_RELOAD_S = 60.0
DEDUP_KEEP = 200_000                 # payload digests remembered to drop redelivered copies


# ---------------------------------------------------------------- topics
def reads_topic(site_id: str, reader_id: str) -> str:
    return f"wardsight/{site_id}/{reader_id}/reads"


def location_topic(site_id: str, provider: str) -> str:
    return f"wardsight/{site_id}/rtls/{provider}/location"


def subscriptions(site_id: str) -> list[str]:
    return [f"wardsight/{site_id}/+/reads", f"wardsight/{site_id}/rtls/+/location"]


@dataclass(frozen=True)
class Topic:
    site_id: str
    kind: str          # "reads" | "location"
    sender: str        # reader_id, or RTLS provider


def parse_topic(topic: str) -> Topic | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "wardsight" and parts[3] == "reads" and all(parts[1:3]):
        return Topic(parts[1], "reads", parts[2])
    if len(parts) == 5 and parts[0] == "wardsight" and parts[2] == "rtls" and parts[4] == "location" \
            and parts[1] and parts[3]:
        return Topic(parts[1], "location", parts[3])
    return None


# ---------------------------------------------------------------- decoding
@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = QOS
    dup: bool = False
    received_ms: int = 0

    @property
    def digest(self) -> bytes:
        return hashlib.blake2b(self.topic.encode() + b"\0" + self.payload, digest_size=16).digest()


@dataclass
class Decoded:
    raw: pd.DataFrame
    quarantine: pd.DataFrame
    last_seq: dict[str, int] = field(default_factory=dict)


def decode(messages: Iterable[Message], *, site_id: str, now: datetime, keys: Mapping[str, Any] | None = None,
           last_seq: Mapping[str, int] | None = None) -> Decoded:
    """MQTT messages → raw read frame for the pipeline + message-level quarantine rows."""
    rows: list[dict] = []
    bad: list[dict] = []
    envelopes: list[tuple[Topic, dict, str]] = []       # (topic, object, payload text) awaiting signature checks
    received = pd.Timestamp(now)

    def reject(reason: str, raw: str) -> None:
        bad.append({"received_at": received, "source": SOURCE, "reason": reason, "raw": raw[:2000]})

    for m in messages:
        text = m.payload.decode("utf-8", errors="replace")
        topic = parse_topic(m.topic)
        if topic is None or topic.site_id != site_id:
            reject(f"topic {m.topic[:80]} is not wardsight/{site_id}/<reader>/reads or "
                   f"wardsight/{site_id}/rtls/<provider>/location", text)
            continue
        try:
            obj = orjson.loads(m.payload)
        except orjson.JSONDecodeError as exc:
            reject(f"not JSON ({exc.args[0][:60]})", text)
            continue
        for item in obj if isinstance(obj, list) else [obj]:
            if not isinstance(item, dict):
                reject("a message item must be a JSON object", str(item)[:500])
                continue
            envelopes.append((topic, item, text))
    if keys:
        envelopes, marks = _verify(envelopes, keys, last_seq or {}, now, reject)
    else:
        marks = dict(last_seq or {})
    for topic, item, text in envelopes:
        _expand(topic, item, rows, reject)
    raw = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["ts", "tag_id"])
    return Decoded(raw, pd.DataFrame(bad, columns=QUARANTINE_COLUMNS), marks)


def _verify(envelopes, keys, last_seq, now, reject):
    """Signed envelopes only; the signer must be the topic's reader/provider."""
    items = [item for _, item, _ in envelopes]
    verdict = signing.verify_batch(items, keys, last_seq, now)
    bad_ids = {id(m): reason for m, reason in verdict.quarantined}
    kept = []
    for topic, item, text in envelopes:
        if id(item) in bad_ids:
            reject(f"signature: {bad_ids[id(item)]}", text)
        elif item.get("reader_id") != topic.sender:
            reject(f"signature: signed by {str(item.get('reader_id'))[:40]} but published on {topic.sender}'s topic", text)
        else:
            kept.append((topic, {k: v for k, v in item.items() if k != signing.SIG_FIELD}, text))
    return kept, verdict.last_seq


def _expand(topic: Topic, item: dict, rows: list[dict], reject) -> None:
    """An envelope or a flat read → flat reads in ingest's raw columns."""
    if "tag_reports" in item or "locations" in item:
        reports = item.get("tag_reports", item.get("locations"))
        if not isinstance(reports, list):
            reject("tag_reports/locations must be a list", orjson.dumps(item, default=str).decode()[:2000])
            return
        for rep in reports:
            if not isinstance(rep, dict):
                reject("a tag report must be a JSON object", str(rep)[:500])
                continue
            _one(topic, {**rep, "ts": rep.get("ts", rep.get("timestamp_generated", item.get("ts")))}, rows, reject)
    else:
        _one(topic, item, rows, reject)


def _one(topic: Topic, rep: dict, rows: list[dict], reject) -> None:
    if topic.kind == "location":
        rows.append(omlox_read(rep) if "position" in rep else rep)
        return
    reader = rep.get("reader_id")
    if reader is not None and reader != topic.sender:
        reject(f"reader_id {str(reader)[:40]} does not match the topic's reader {topic.sender}",
               orjson.dumps(rep, default=str).decode())
        return
    rows.append({**rep, "reader_id": topic.sender})


# ---------------------------------------------------------------- connection helpers
def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp"):
        raise FeedError(f"MQTT URL {url!r}: only mqtt://host:port is supported")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def make_client(client_id: str, *, manual_ack: bool, persistent: bool = True):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    client.reconnect_delay_set(min_delay=1, max_delay=30)      # paho doubles the delay per failed attempt
    client.max_queued_messages_set(0)                           # publisher: queue while disconnected
    return client


def connect_properties(session_expiry_s: int = SESSION_EXPIRY_S, receive_maximum: int = RECEIVE_MAXIMUM):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    return props


# ---------------------------------------------------------------- ingest service
@dataclass
class IngestStatus:
    connected: bool = False
    connects: int = 0
    received: int = 0
    redelivered: int = 0          # copies of messages already stored or pending: acknowledged, not re-stored
    committed_batches: int = 0
    accepted: int = 0
    quarantined: int = 0
    storage_errors: int = 0
    hook_errors: int = 0
    pending_messages: int = 0
    last_error: str | None = None
    last_lag_ms: int | None = None


class MqttIngest:
    """Subscribes to the site's topics and stores every message exactly once through `pipeline`.

    `run()` blocks (the network runs in paho's thread; batching and storing in the caller's);
    `stop()` makes it commit what it holds and return."""

    def __init__(self, pipeline: Pipeline, *, mqtt_url: str, site_id: str, client_id: str,
                 batch_s: float = 0.5, batch_max: int = 1000, keys_loader: Callable[[], Mapping] | None = None,
                 seq_loader: Callable[[], Mapping[str, int]] | None = None,
                 seq_saver: Callable[[Mapping[str, int]], None] | None = None,
                 clock: Callable[[], datetime] | None = None, receive_maximum: int = RECEIVE_MAXIMUM):
        self.pipeline, self.site_id, self.client_id = pipeline, site_id, client_id
        self.host, self.port = broker_address(mqtt_url)
        self.batch_s, self.batch_max, self.receive_maximum = batch_s, batch_max, receive_maximum
        self.keys_loader, self.seq_loader, self.seq_saver = keys_loader, seq_loader, seq_saver
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        install_idempotency(pipeline)
        self.committer = Committer(pipeline, SOURCE)
        self.status = IngestStatus()
        self._inbox: deque[Message] = deque()
        self._current: list[Message] = []
        self._current_since = 0.0
        self._pending: deque[Batch] = deque()
        self._seen: OrderedDict[bytes, bool] = OrderedDict()       # digest → committed?
        self._stop = threading.Event()
        self._backoff = Backoff(0.5, 5.0)
        self._retry_at = 0.0
        self._keys: dict = {}
        self._keys_at = -1e9
        self._last_seq: dict[str, int] = {}
        self._seq_loaded = False
        self.client = None

    # ----- paho callbacks (network thread): only hand messages over
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.status.last_error = f"connect refused: {reason_code}"
            return
        self.status.connected, self.status.connects = True, self.status.connects + 1
        client.subscribe([(t, QOS) for t in subscriptions(self.site_id)])
        log.info("connected to %s:%s (session present: %s)", self.host, self.port, flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.status.connected = False
        log.warning("disconnected (%s); paho reconnects with back-off", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        self._inbox.append(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup),
                                   int(time.time() * 1000)))

    # ----- lifecycle
    def start(self) -> "MqttIngest":
        self.client = make_client(self.client_id, manual_ack=True)
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_message = self._on_message
        self.client.connect_async(self.host, self.port, keepalive=15, clean_start=False,
                                  properties=connect_properties(receive_maximum=self.receive_maximum))
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def run(self, idle_s: float = 0.02, report_every_s: float = 0.0) -> None:
        if self.client is None:
            self.start()
        next_report = time.monotonic() + report_every_s
        try:
            while not self._stop.is_set():
                if not self.step():
                    time.sleep(idle_s)
                if report_every_s and time.monotonic() >= next_report:
                    log.info("status %s", orjson.dumps(self.status.__dict__).decode())
                    next_report = time.monotonic() + report_every_s
            self._drain_on_stop()
        finally:
            self.close()

    def _drain_on_stop(self, deadline_s: float = 10.0) -> None:
        end = time.monotonic() + deadline_s
        self._seal(force=True)
        while self._pending and time.monotonic() < end:
            if not self._commit_head():
                time.sleep(0.2)

    # ----- batching (caller's thread)
    def step(self) -> bool:
        """Take received messages, seal and commit due batches. True when it did some work."""
        worked = False
        while self._inbox:
            self._take(self._inbox.popleft())
            worked = True
        if self._current and (len(self._current) >= self.batch_max
                              or time.monotonic() - self._current_since >= self.batch_s):
            self._seal()
            worked = True
        if self._pending and time.monotonic() >= self._retry_at:
            worked = self._commit_head() or worked
        self.status.pending_messages = len(self._current) + sum(len(b.acks) for b in self._pending)
        return worked

    def _take(self, m: Message) -> None:
        self.status.received += 1
        d = m.digest
        if d in self._seen:
            # A redelivered copy (QoS 1 resend after a reconnect). Pending: the original's ack covers
            # the same packet id. Committed: acknowledge now so the broker stops resending.
            self.status.redelivered += 1
            if self._seen[d]:
                self._ack([m])
            return
        self._seen[d] = False
        if not self._current:
            self._current_since = time.monotonic()
        self._current.append(m)

    def _seal(self, force: bool = False) -> None:
        if not self._current:
            return
        if not self._load_security(force):
            return                                   # database down: keep collecting, try again later
        now = self.clock()
        msgs, self._current = self._current, []
        dec = decode(msgs, site_id=self.site_id, now=now, keys=self._keys, last_seq=self._last_seq)
        if self._keys:
            self._last_seq = dict(dec.last_seq)
        self._pending.append(Batch(dec.raw, now, dec.quarantine, acks=msgs, meta={"last_seq": dict(dec.last_seq)}))

    def _load_security(self, force: bool) -> bool:
        """Reader keys (reloaded every minute, for rotations) and sequence marks (once). False when
        they were never loaded and the database is down: a batch cannot be judged yet."""
        try:
            if self.keys_loader and (force or time.monotonic() - self._keys_at > KEYS_RELOAD_S):
                self._keys = dict(self.keys_loader())
                self._keys_at = time.monotonic()
            if self.seq_loader and not self._seq_loaded:
                self._last_seq = dict(self.seq_loader())
                self._seq_loaded = True
            return True
        except StorageError as exc:
            self.status.last_error = str(exc)[:300]
            keys_ok = self.keys_loader is None or self._keys_at > -1e9
            seq_ok = self.seq_loader is None or self._seq_loaded
            return keys_ok and seq_ok

    def _commit_head(self) -> bool:
        batch = self._pending[0]
        try:
            outcome = self.committer.commit(batch)
            if self.seq_saver and self._keys:
                self.seq_saver(batch.meta["last_seq"])
        except StorageError as exc:
            self.status.storage_errors += 1
            self.status.last_error = str(exc)[:300]
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            log.warning("store failed (%s); %d batches held, retry in %.1f s", exc, len(self._pending), delay)
            return False
        self._pending.popleft()
        self._backoff.reset()
        self._ack(batch.acks)
        for m in batch.acks:
            self._seen[m.digest] = True
        while len(self._seen) > DEDUP_KEEP:
            self._seen.popitem(last=False)
        self.status.committed_batches += 1
        if outcome.result is None:
            self.status.hook_errors += 1
            return True
        self.status.accepted += outcome.result.accepted
        self.status.quarantined += outcome.result.quarantined
        self._record_lag(outcome.result)
        return True

    def _record_lag(self, result) -> None:
        if result.located.empty:
            return
        newest = pd.Timestamp(result.located["ts"].max())
        lag_ms = max(0, to_ms(self.clock()) - to_ms(newest))
        self.status.last_lag_ms = lag_ms
        try:
            self.pipeline.repo.record_lag(SOURCE, lag_ms)
        except StorageError as exc:        # a statistic: never worth holding the data for
            self.status.last_error = str(exc)[:300]

    def _ack(self, msgs: list[Message]) -> None:
        if self.client is None:
            return
        for m in msgs:
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)


# ---------------------------------------------------------------- publishing (simulator, tests)
def _iso_ms(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23).add("Z").to_numpy(dtype=object)


def _clean(records: list[dict]) -> list[dict]:
    """Drop NaN/None fields (JSON has no NaN; an absent field is what a real reader sends)."""
    return [{k: v for k, v in r.items() if v is not None and not (isinstance(v, float) and v != v)} for r in records]


def messages_for(reads: pd.DataFrame, site_id: str, now: datetime, seq: dict[str, int], *,
                 keys: Mapping[str, str] | None = None, provider: str = "sim-rtls") -> list[tuple[str, bytes]]:
    """Simulator reads → (topic, payload): one envelope per reader with its tag reports, one per
    RTLS provider with omlox Locations; signed with the sender's key when `keys` has one."""
    out: list[tuple[str, bytes]] = []
    if reads.empty:
        return out
    ts_parsed = pd.to_datetime(reads["ts"], utc=True, errors="coerce", format="ISO8601")
    iso = pd.Series(_iso_ms(ts_parsed.fillna(pd.Timestamp(now))), index=reads.index)
    sent = _iso_ms(pd.Series([pd.Timestamp(now)]))[0]
    is_reader = reads["reader_id"].notna() if "reader_id" in reads else pd.Series(False, index=reads.index)
    rd = reads[is_reader]
    for reader_id, grp in rd.groupby("reader_id", sort=True):
        cols = {"tag_id": grp["tag_id"], "antenna": grp["antenna"].astype("Int64").astype(object),
                "rssi_dbm": grp["rssi_dbm"], "ts": iso[grp.index]}
        if "battery_pct" in grp:
            cols["battery_pct"] = grp["battery_pct"]
        reports = _clean(pd.DataFrame(cols).astype(object).to_dict(orient="records"))
        out.append((reads_topic(site_id, str(reader_id)),
                    _envelope({"reader_id": str(reader_id), "tag_reports": reports}, seq, sent, keys)))
    pos = reads[~is_reader]
    if len(pos):
        locs = [{"position": {"type": "Point", "coordinates": [x, y]}, "provider_id": t, "provider_type": "uwb",
                 "timestamp_generated": ts, "floor_id": f}
                for x, y, t, ts, f in zip(pos["x_m"].astype(object), pos["y_m"].astype(object), pos["tag_id"],
                                          iso[pos.index], pos["floor_id"])]
        for loc, b in zip(locs, pos["battery_pct"] if "battery_pct" in pos else [None] * len(locs)):
            if b is not None and b == b:
                loc["battery_pct"] = b
            loc["position"]["coordinates"] = [None if c != c else c for c in loc["position"]["coordinates"]]
        out.append((location_topic(site_id, provider),
                    _envelope({"reader_id": provider, "locations": locs}, seq, sent, keys)))
    return out


def _envelope(body: dict, seq: dict[str, int], sent_iso: str, keys: Mapping[str, str] | None) -> bytes:
    sender = body["reader_id"]
    seq[sender] = seq.get(sender, 0) + 1
    msg = {**body, "seq": seq[sender], "ts": sent_iso}
    if keys and sender in keys:
        msg = signing.sign(msg, keys[sender])
    return orjson.dumps(msg, default=str)


class Publisher:
    """A QoS 1 publisher on a persistent session (messages published while the broker is away are
    queued by paho and sent after it reconnects)."""

    def __init__(self, mqtt_url: str, client_id: str):
        self.host, self.port = broker_address(mqtt_url)
        self.client = make_client(client_id, manual_ack=False)
        self.client.max_inflight_messages_set(RECEIVE_MAXIMUM)
        self._lock = threading.Lock()
        self._sent: set[int] = set()
        self._acked: set[int] = set()
        self.client.on_publish = self._on_publish
        self.client.connect_async(self.host, self.port, keepalive=15, clean_start=False,
                                  properties=connect_properties(receive_maximum=RECEIVE_MAXIMUM))
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self._acked.add(mid)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=QOS)     # queued by paho when disconnected
        with self._lock:
            self._sent.add(info.mid)

    def wait_acked(self, timeout_s: float = 30.0) -> bool:
        """True when the broker acknowledged every message published so far."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                done = self._sent <= self._acked
                if done:
                    self._sent.clear()
                    self._acked.clear()
            if done:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
