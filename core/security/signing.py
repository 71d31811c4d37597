"""Feed message integrity (standards §6.1 "Reader message integrity" [E]).

Each reader / edge gateway holds a secret key and signs every message:

    sig = hex(HMAC-SHA256(key, canonical_json(message without "sig")))

where canonical JSON is UTF-8, keys sorted at every level, no whitespace (orjson OPT_SORT_KEYS),
and the message body must carry `reader_id`, an increasing integer `seq` and `ts` (ISO-8601 with a
zone, or integer epoch ms), so all three are covered by the MAC. The receiver refuses a bad MAC,
an unknown key, a `seq` not above the last accepted one (replay) and a `ts` more than ±30 s from
its own clock. Keys are strings (used as their UTF-8 bytes) or bytes; several keys per reader may
be active during a rotation.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import InvalidInput, StorageError
from core.models import QUARANTINE_COLUMNS, to_ms
from core.security.tables import reader_keys, seen_sequences

SIG_FIELD = "sig"
WINDOW_S = 30.0                       # standards §6.1 [E]: reject ts outside ±30 s
MALFORMED = "malformed message"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown reader key"
BAD_SIGNATURE = "bad signature"
REPLAYED = "replayed sequence"
_ZONE = r"(?:Z|z|[+-]\d{2}:?\d{2})$"


def window_reason(window_s: float) -> str:
    return f"timestamp outside ±{window_s:g} s window"


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode("utf-8")


def canonical_body(message: Mapping[str, Any]) -> bytes:
    """The signed bytes: every field except the signature, canonical JSON."""
    return orjson.dumps({k: v for k, v in message.items() if k != SIG_FIELD}, option=orjson.OPT_SORT_KEYS)


def signature(message: Mapping[str, Any], key: str | bytes) -> str:
    return hmac.new(_key_bytes(key), canonical_body(message), hashlib.sha256).hexdigest()


def sign(message: Mapping[str, Any], key: str | bytes) -> dict[str, Any]:
    """A copy of `message` with its `sig` field set (what a reader publishes)."""
    for name in ("reader_id", "seq", "ts"):
        if name not in message:
            raise InvalidInput(f"a signed message needs {name!r} in its body")
    return {**message, SIG_FIELD: signature(message, key)}


def new_reader_key() -> str:
    """A fresh 256-bit key (hex) to provision on a reader and store with `add_reader_key`."""
    return secrets.token_hex(32)


@dataclass
class VerifiedBatch:
    accepted: list[dict[str, Any]]
    quarantined: list[tuple[Any, str]]            # (message as received, reason)
    last_seq: dict[str, int] = field(default_factory=dict)   # updated high-water marks: persist them

    def __iter__(self) -> Iterator:               # `accepted, quarantined = verify_batch(...)`
        return iter((self.accepted, self.quarantined))

    def quarantine_frame(self, received_at: datetime, source: str) -> pd.DataFrame:
        """Quarantined messages as rows of the shared quarantine frame (core.models.QUARANTINE_COLUMNS)."""
        raws = [orjson.dumps(m, default=str).decode() if isinstance(m, dict) else repr(m)
                for m, _ in self.quarantined]
        return pd.DataFrame({"received_at": [received_at] * len(raws), "source": [source] * len(raws),
                             "reason": [r for _, r in self.quarantined], "raw": raws}, columns=QUARANTINE_COLUMNS)


def verify_batch(messages: Sequence[Any], keys: Mapping[str, str | bytes | Iterable[str | bytes]],
                 last_seq: Mapping[str, int], now: datetime, window_s: float = WINDOW_S) -> VerifiedBatch:
    """Split a batch into accepted messages (signature stripped) and quarantined (message, reason).
    `keys`: reader_id -> key or list of active keys; `last_seq`: reader_id -> last accepted seq.
    Reasons, first that applies: malformed message, unsigned, unknown reader key, bad signature,
    timestamp outside the window, replayed sequence."""
    n = len(messages)
    reasons = np.full(n, None, dtype=object)
    reader = np.full(n, None, dtype=object)
    seq = np.zeros(n, dtype=np.int64)
    ts_raw = np.full(n, None, dtype=object)
    key_lists = {r: _as_key_list(k) for r, k in keys.items()}
    for i, message in enumerate(messages):           # HMAC is per message by nature; keep the loop thin
        reasons[i] = _mac_check(message, key_lists)
        if reasons[i] is None:
            reader[i], seq[i], ts_raw[i] = message["reader_id"], message["seq"], message["ts"]
    ts_ms, ts_ok = _parse_ts(ts_raw)
    live = reasons == None  # noqa: E711  (elementwise on an object array)
    reasons[live & ~ts_ok] = MALFORMED
    late = live & ts_ok & (np.abs(ts_ms - to_ms(now)) > window_s * 1000)
    reasons[late] = window_reason(window_s)
    live = reasons == None  # noqa: E711
    replayed = _replayed(reader, seq, live, last_seq)
    reasons[replayed] = REPLAYED
    ok = np.flatnonzero(reasons == None)  # noqa: E711
    accepted = [{k: v for k, v in messages[i].items() if k != SIG_FIELD} for i in ok]
    high = dict(last_seq)
    if len(ok):
        best = pd.Series(seq[ok]).groupby(reader[ok]).max()
        high.update({r: max(int(s), int(high.get(r, s))) for r, s in best.items()})
    quarantined = [(messages[i], reasons[i]) for i in np.flatnonzero(reasons != None)]  # noqa: E711
    return VerifiedBatch(accepted, quarantined, high)


def _as_key_list(key: str | bytes | Iterable[str | bytes]) -> list[bytes]:
    if isinstance(key, (str, bytes)):
        return [_key_bytes(key)]
    return [_key_bytes(k) for k in key]


def _mac_check(message: Any, key_lists: Mapping[str, list[bytes]]) -> str | None:
    if not isinstance(message, dict):
        return MALFORMED
    reader_id, seq = message.get("reader_id"), message.get("seq")
    if (not isinstance(reader_id, str) or not reader_id or isinstance(seq, bool) or not isinstance(seq, int)
            or not 0 <= seq < 2**63 or not _ts_shape_ok(message.get("ts"))):
        return MALFORMED
    sig = message.get(SIG_FIELD)
    if sig is None or sig == "":
        return UNSIGNED
    candidates = key_lists.get(reader_id)
    if not candidates:
        return UNKNOWN_KEY
    if not isinstance(sig, str):
        return BAD_SIGNATURE
    try:
        body = canonical_body(message)
    except (TypeError, orjson.JSONEncodeError):
        return MALFORMED
    # compare against every active key (no early exit) so timing does not reveal which one matched
    matches = [hmac.compare_digest(hmac.new(k, body, hashlib.sha256).hexdigest(), sig.lower()) for k in candidates]
    return None if any(matches) else BAD_SIGNATURE


def _ts_shape_ok(ts: Any) -> bool:
    if isinstance(ts, bool):
        return False
    return isinstance(ts, str) or (isinstance(ts, int) and abs(ts) < 2**62)


def _parse_ts(ts_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised: ISO strings with an explicit zone, or integer epoch ms. Returns (ms, valid)."""
    raw = pd.Series(ts_raw, dtype=object)
    is_num = raw.map(lambda v: isinstance(v, int) and not isinstance(v, bool)).to_numpy(dtype=bool)
    is_str = raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    ms = np.zeros(len(raw), dtype=np.int64)
    ok = np.zeros(len(raw), dtype=bool)
    if is_num.any():
        ms[is_num] = raw[is_num].astype("int64").to_numpy()
        ok[is_num] = True
    if is_str.any():
        text = raw[is_str].astype(str)
        zoned = text.str.contains(_ZONE, regex=True).to_numpy(dtype=bool)  # never guess a zone
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        good = zoned & parsed.notna().to_numpy()
        idx = np.flatnonzero(is_str)
        ms[idx[good]] = parsed[good].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        ok[idx[good]] = True
    return ms, ok


def _replayed(reader: np.ndarray, seq: np.ndarray, live: np.ndarray, last_seq: Mapping[str, int]) -> np.ndarray:
    """A seq at or below the reader's high-water mark, or a duplicate inside the batch (the first
    copy wins; out-of-order delivery inside one batch is tolerated)."""
    out = np.zeros(len(reader), dtype=bool)
    idx = np.flatnonzero(live)
    if not len(idx):
        return out
    frame = pd.DataFrame({"i": idx, "reader": reader[idx], "seq": seq[idx]})
    dup = frame.duplicated(["reader", "seq"], keep="first").to_numpy()
    mark = frame["reader"].map(lambda r: last_seq.get(r, -1)).astype("int64").to_numpy()
    out[idx[dup | (frame["seq"].to_numpy() <= mark)]] = True
    return out


# ---- key and sequence storage --------------------------------------------------------------------------
def add_reader_key(engine: Engine, reader_id: str, key: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(reader_keys.insert().values(reader_id=reader_id, key=key, active=True))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store key for reader {reader_id}: {exc}") from exc


def retire_reader_key(engine: Engine, reader_id: str, key: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(update(reader_keys).where(reader_keys.c.reader_id == reader_id, reader_keys.c.key == key)
                         .values(active=False))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot retire key for reader {reader_id}: {exc}") from exc


def load_reader_keys(engine: Engine) -> dict[str, list[str]]:
    """reader_id -> active keys (the `keys` argument of verify_batch)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(reader_keys.c.reader_id, reader_keys.c.key)
                                .where(reader_keys.c.active.is_(True))).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot load reader keys: {exc}") from exc
    out: dict[str, list[str]] = {}
    for reader_id, key in rows:
        out.setdefault(reader_id, []).append(key)
    return out


def load_last_seq(engine: Engine) -> dict[str, int]:
    try:
        with engine.connect() as conn:
            return {r: int(s) for r, s in conn.execute(select(seen_sequences.c.reader_id, seen_sequences.c.last_seq))}
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot load sequence marks: {exc}") from exc


def save_last_seq(engine: Engine, marks: Mapping[str, int]) -> None:
    """Persist high-water marks; a mark never moves backwards."""
    try:
        with engine.begin() as conn:
            stored = {r: int(s) for r, s in conn.execute(select(seen_sequences.c.reader_id, seen_sequences.c.last_seq))}
            for reader_id, mark in marks.items():
                if reader_id not in stored:
                    conn.execute(seen_sequences.insert().values(reader_id=reader_id, last_seq=int(mark)))
                elif int(mark) > stored[reader_id]:
                    conn.execute(update(seen_sequences).where(seen_sequences.c.reader_id == reader_id)
                                 .values(last_seq=int(mark)))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot store sequence marks: {exc}") from exc


def verify_with_store(engine: Engine, messages: Sequence[Any], now: datetime, *, source: str,
                      window_s: float = WINDOW_S) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """The one call an ingest service needs: verify decoded JSON payloads against the reader keys
    and sequence marks in the store, persist the advanced marks, and return (accepted messages
    without `sig`, quarantine frame with QUARANTINE_COLUMNS ready for `Pipeline.process(...,
    extra_quarantine=...)`)."""
    batch = verify_batch(messages, load_reader_keys(engine), load_last_seq(engine), now, window_s)
    if batch.accepted:
        save_last_seq(engine, batch.last_seq)
    return batch.accepted, batch.quarantine_frame(now, source)
