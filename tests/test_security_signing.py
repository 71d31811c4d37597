"""Per-reader HMAC feed signing: tampering, replay, stale timestamps and unknown keys are quarantined."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

import core.security.tables  # noqa: F401
from core.models import QUARANTINE_COLUMNS
from core.security import signing
from core.storage.engine import make_engine
from core.storage.schema import metadata

NOW = datetime(2025, 3, 4, 8, 0, 0, tzinfo=timezone.utc)
KEYS = {"R1": "key-one-secret", "R2": "key-two-secret"}


def msg(reader="R1", seq=1, ts=None, **extra):
    body = {"reader_id": reader, "seq": seq, "ts": ts or (NOW.isoformat()),
            "reads": [{"tag_id": "T1", "antenna": 1, "rssi_dbm": -61.5}], **extra}
    return signing.sign(body, KEYS.get(reader, "some-other-key"))


def test_signature_is_hmac_sha256_of_sorted_compact_json():
    body = {"seq": 3, "reader_id": "R1", "ts": "2025-03-04T08:00:00+00:00", "reads": [{"b": 1, "a": 2}]}
    expected = hmac.new(b"key-one-secret", json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
                        hashlib.sha256).hexdigest()     # independent reference: stdlib json
    assert signing.sign(body, "key-one-secret")["sig"] == expected


def test_good_batch_accepted_and_marks_advance():
    batch = [msg(seq=1), msg(seq=2), msg("R2", seq=10)]
    accepted, quarantined = signing.verify_batch(batch, KEYS, {}, NOW)
    assert len(accepted) == 3 and quarantined == [] and all("sig" not in m for m in accepted)
    assert signing.verify_batch(batch, KEYS, {"R1": 0}, NOW).last_seq == {"R1": 2, "R2": 10}


def _tampered():
    m = msg(seq=5)
    m["reads"][0]["tag_id"] = "T2"
    return m


@pytest.mark.parametrize("message, reason", [
    (_tampered(), "bad signature"),
    ({**msg(seq=5), "seq": 6}, "bad signature"),                                  # seq is covered by the MAC
    ({**msg(seq=5), "ts": (NOW + timedelta(seconds=1)).isoformat()}, "bad signature"),
    ({k: v for k, v in msg(seq=5).items() if k != "sig"}, "unsigned"),
    (msg("R9", seq=5), "unknown reader key"),
    (msg(seq=5, ts=(NOW - timedelta(seconds=31)).isoformat()), "timestamp outside ±30 s window"),
    (msg(seq=5, ts=(NOW + timedelta(seconds=31)).isoformat()), "timestamp outside ±30 s window"),
    (msg(seq=5, ts="2025-03-04T08:00:00"), "malformed message"),                  # no zone: never guessed
    (msg(seq=5, ts="yesterday"), "malformed message"),
    ({"reader_id": "R1", "sig": "ab"}, "malformed message"),
    ("not a dict", "malformed message"),
    (msg(seq=1), "replayed sequence"),                                             # seq <= last accepted (3)
], ids=["payload-tampered", "seq-changed", "ts-changed", "unsigned", "unknown-reader", "ts-too-old",
        "ts-in-future", "ts-naive", "ts-garbage", "missing-fields", "not-a-dict", "old-seq"])
def test_bad_messages_quarantined_with_reason(message, reason):
    good = msg(seq=4)
    batch = signing.verify_batch([good, message], KEYS, {"R1": 3}, NOW)
    assert batch.accepted == [{k: v for k, v in good.items() if k != "sig"}]
    assert batch.quarantined == [(message, reason)]
    assert batch.last_seq["R1"] == 4


def test_replayed_message_within_batch_and_across_batches():
    first = msg(seq=7)
    batch = signing.verify_batch([first, dict(first)], KEYS, {}, NOW)
    assert len(batch.accepted) == 1 and batch.quarantined[0][1] == "replayed sequence"
    again = signing.verify_batch([first], KEYS, batch.last_seq, NOW + timedelta(seconds=2))
    assert again.accepted == [] and again.quarantined[0][1] == "replayed sequence"


def test_forged_high_seq_does_not_advance_mark():
    forged = {**msg(seq=1000), "sig": "00" * 32}
    batch = signing.verify_batch([forged, msg(seq=2)], KEYS, {"R1": 1}, NOW)
    assert batch.last_seq["R1"] == 2


def test_out_of_order_inside_batch_tolerated():
    batch = signing.verify_batch([msg(seq=3), msg(seq=2)], KEYS, {"R1": 1}, NOW)
    assert [m["seq"] for m in batch.accepted] == [3, 2] and batch.last_seq["R1"] == 3


def test_epoch_ms_timestamp_and_key_rotation():
    ts_ms = int(NOW.timestamp() * 1000) - 5000
    old_key_msg = signing.sign({"reader_id": "R1", "seq": 1, "ts": ts_ms}, "old-key")
    new_key_msg = signing.sign({"reader_id": "R1", "seq": 2, "ts": ts_ms}, "new-key")
    batch = signing.verify_batch([old_key_msg, new_key_msg], {"R1": ["new-key", "old-key"]}, {}, NOW)
    assert len(batch.accepted) == 2
    batch = signing.verify_batch([old_key_msg], {"R1": ["new-key"]}, {}, NOW)
    assert batch.quarantined[0][1] == "bad signature"


def test_quarantine_frame_shape():
    batch = signing.verify_batch([_tampered()], KEYS, {}, NOW)
    frame = batch.quarantine_frame(NOW, "mqtt")
    assert list(frame.columns) == QUARANTINE_COLUMNS and frame["reason"].tolist() == ["bad signature"]
    assert json.loads(frame["raw"].iloc[0])["seq"] == 5


def test_keys_and_marks_round_trip_through_the_store():
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    key = signing.new_reader_key()
    signing.add_reader_key(engine, "R1", key)
    signing.add_reader_key(engine, "R1", "retired-key")
    signing.retire_reader_key(engine, "R1", "retired-key")
    assert signing.load_reader_keys(engine) == {"R1": [key]}
    signing.save_last_seq(engine, {"R1": 5})
    signing.save_last_seq(engine, {"R1": 3, "R2": 1})              # never moves backwards
    assert signing.load_last_seq(engine) == {"R1": 5, "R2": 1}


def test_large_batch_is_quick():
    import time
    batch = [msg(f"R{1 + i % 2}", seq=i) for i in range(5000)]
    start = time.perf_counter()
    result = signing.verify_batch(batch, KEYS, {}, NOW)
    assert len(result.accepted) == 5000
    assert time.perf_counter() - start < 2.0
