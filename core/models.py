"""Enums, frozen dataclasses and the canonical DataFrame column names shared across core/.

Times inside Wardsight are tz-aware UTC. In the database they are stored as integer epoch
milliseconds (`*_ms` columns): one unambiguous, fast representation on SQLite and PostgreSQL alike
(see docs/decisions.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

import numpy as np
import pandas as pd


class EntityKind(str, Enum):
    STAFF = "staff"
    PATIENT = "patient"
    DEVICE = "device"
    DRUG = "drug"
    WASTE = "waste"
    BIN = "bin"


class StaffRole(str, Enum):
    NURSE = "nurse"
    CHARGE_NURSE = "charge_nurse"
    DOCTOR = "doctor"
    HCA = "hca"                # healthcare assistant
    PORTER = "porter"
    CLEANER = "cleaner"
    PHARMACIST = "pharmacist"
    WARD_MANAGER = "ward_manager"


class PresenceState(str, Enum):
    PRESENT = "present"   # reported within stale_after_s
    STALE = "stale"       # silent longer than stale_after_s: last known place shown, faded
    UNKNOWN = "unknown"   # silent longer than unknown_after_s, or never seen: no place claimed


class ReadShape(str, Enum):
    READER = "reader"       # LLRP-like: reader_id, antenna, rssi_dbm
    POSITION = "position"   # RTLS / omlox-like: x_m, y_m, floor_id


# Canonical columns of an accepted, validated read batch (ingest output).
READ_COLUMNS = ["ts", "tag_id", "shape", "reader_id", "antenna", "rssi_dbm", "x_m", "y_m", "floor_id"]
# Columns of a located read batch (locate output).
LOCATED_COLUMNS = READ_COLUMNS + ["room_id", "bed_id"]
# Columns of a quarantine frame.
QUARANTINE_COLUMNS = ["received_at", "source", "reason", "raw"]


@dataclass(frozen=True)
class Presence:
    """Where a tag is: `since` is when the place last changed, `last_seen` when it was last reported."""
    tag_id: str
    entity_id: str
    floor_id: str | None
    room_id: str | None
    bed_id: str | None
    since: datetime
    last_seen: datetime

    def state(self, now: datetime, stale_after_s: float, unknown_after_s: float) -> PresenceState:
        age_s = (now - self.last_seen).total_seconds()
        if age_s > unknown_after_s:
            return PresenceState.UNKNOWN
        if age_s > stale_after_s:
            return PresenceState.STALE
        return PresenceState.PRESENT


def utc(ts: datetime) -> datetime:
    """Return `ts` as tz-aware UTC; a naive datetime is refused (we never guess a zone)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: Wardsight needs tz-aware times")
    return ts.astimezone(timezone.utc)


def to_ms(ts) -> int:
    """tz-aware datetime / Timestamp → epoch milliseconds."""
    return int(pd.Timestamp(utc(pd.Timestamp(ts).to_pydatetime())).value // 1_000_000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)


def series_to_ms(s: pd.Series) -> np.ndarray:
    """A tz-aware datetime Series → int64 epoch ms array (vectorised)."""
    return s.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def ms_to_series(ms, name: str = "ts") -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ms, dtype="int64"), unit="ms", utc=True), name=name)


def utc_timestamp(ts, name: str, error: type[Exception] = ValueError) -> pd.Timestamp:
    """`ts` as a tz-aware UTC Timestamp; a naive time raises `error` naming the argument."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise error(f"{name}={ts!r} is naive; pass a tz-aware time")
    return t.tz_convert("UTC")


def time_window(start, end, error: type[Exception] = ValueError,
                empty_error: type[Exception] = ValueError) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) as UTC Timestamps; naive times raise `error`, an empty window `empty_error`."""
    s, e = utc_timestamp(start, "start", error), utc_timestamp(end, "end", error)
    if e <= s:
        raise empty_error(f"empty window: end {e} is not after start {s}")
    return s, e
