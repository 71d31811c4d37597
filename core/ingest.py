"""Parse and validate feed reads. Every input row ends up in exactly one of two frames:

* accepted — canonical columns (`core.models.READ_COLUMNS` + `origin`), ts tz-aware UTC;
* quarantine — `received_at, source, reason, raw` (the original row as JSON), one reason per row.

Checks are whole-column operations; a bad row never costs the good rows around it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from datetime import datetime

import numpy as np
import orjson
import pandas as pd

from core.models import QUARANTINE_COLUMNS, READ_COLUMNS

MAX_FUTURE_S = 30.0        # reader clock ahead of the server by more than this → quarantine (skew)
MIN_RSSI_DBM = -120.0      # below the sensitivity of any RFID/BLE receiver
MAX_OFF_PLAN_M = 5.0       # a position this far outside the floor's extent is not on this floor
EPOCH_MS_MIN, EPOCH_MS_MAX = 946_684_800_000, 4_102_444_800_000   # 2000-01-01 .. 2100-01-01
RAW_COLUMNS = ["ts", "tag_id", "reader_id", "antenna", "rssi_dbm", "x_m", "y_m", "floor_id", "battery_pct"]
# Optional per-read telemetry passed through to `accepted` (NaN when the feed does not send it).
OPTIONAL_COLUMNS = ["battery_pct"]


@dataclass(frozen=True)
class Registry:
    """What ingest validates against: registered tags, reader antennas and floor extents."""
    tag_ids: frozenset[str]
    antennas: frozenset[tuple[str, int]]
    floor_bounds: dict[str, tuple[float, float, float, float]]

    @cached_property
    def antenna_keys(self) -> frozenset[str]:
        return frozenset(f"{r}:{a}" for r, a in self.antennas)

    @cached_property
    def tag_index(self) -> pd.Index:
        """Hash index of the registered tags: membership of a whole column in one C call (the
        arrow string `isin` walks the value set in Python on every batch)."""
        return pd.Index(list(self.tag_ids), dtype=object)

    @cached_property
    def antenna_index(self) -> pd.Index:
        return pd.Index(list(self.antenna_keys), dtype=object)

    @classmethod
    def from_site(cls, site) -> "Registry":
        ant = frozenset(zip(site.readers["reader_id"].astype(str), site.readers["antenna"].astype(int)))
        return cls(frozenset(site.tags["tag_id"].astype(str)), ant,
                   {fid: fp.bounds for fid, fp in site.floors.items()})


def _known(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Boolean membership of every value in `index` (missing values are not members)."""
    return index.get_indexer(values.to_numpy(dtype=object, na_value=None)) >= 0


def _floor_bounds(floor: pd.Series, registry: Registry) -> tuple[pd.Series, ...]:
    """(min x, min y, max x, max y) of each row's floor, NaN for unknown floors: one hash look-up
    per row and a table take (Series.map with a dict is a Python call per row)."""
    names = list(registry.floor_bounds)
    table = np.array([registry.floor_bounds[f] for f in names] + [(np.nan,) * 4], dtype=float)
    idx = pd.Index(names, dtype=object).get_indexer(floor.to_numpy(dtype=object, na_value=None))
    rows = table[idx]                                   # −1 → the NaN row
    return tuple(pd.Series(rows[:, k], index=floor.index) for k in range(4))


@dataclass
class IngestResult:
    accepted: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        return {"accepted": len(self.accepted), "quarantined": len(self.quarantine)}


def parse_json_lines(lines, *, source: str, received_at: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """JSON lines / MQTT payloads → raw frame; undecodable lines go straight to quarantine.

    A line may hold one read object or a list of them. Position reads in the omlox Location shape
    (`position.coordinates`, `provider_id`, `timestamp_generated`, `floor`) are mapped to our columns.
    """
    rows, bad = [], []
    for n, line in enumerate(lines, start=1):
        if isinstance(line, (bytes, bytearray)):
            text = bytes(line)
        else:
            text = str(line).strip().encode()
        if not text.strip():
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            bad.append(_qrow(received_at, source, f"line {n}: not JSON ({exc.args[0][:60]})", text.decode(errors="replace")))
            continue
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            if not isinstance(item, dict):
                bad.append(_qrow(received_at, source, f"line {n}: a read must be a JSON object", str(item)[:500]))
                continue
            rows.append(omlox_read(item) if "position" in item else item)
    raw = pd.DataFrame(rows) if rows else pd.DataFrame(columns=RAW_COLUMNS)
    return raw, pd.DataFrame(bad, columns=QUARANTINE_COLUMNS)


def omlox_read(item: dict) -> dict:
    """An omlox Location object (position.coordinates, provider_id, timestamp_generated, floor) → a
    position read in our columns."""
    coords = (item.get("position") or {}).get("coordinates") or [None, None]
    out = {"ts": item.get("timestamp_generated") or item.get("ts"), "tag_id": item.get("provider_id") or item.get("tag_id"),
           "x_m": coords[0] if len(coords) > 0 else None, "y_m": coords[1] if len(coords) > 1 else None,
           "floor_id": item.get("floor_id") or (None if item.get("floor") is None else str(item.get("floor")))}
    if "battery_pct" in item:   # not an omlox Location field; our RTLS extension (tag telemetry)
        out["battery_pct"] = item["battery_pct"]
    return out


def _qrow(received_at: datetime, source: str, reason: str, raw: str) -> dict:
    return {"received_at": pd.Timestamp(received_at), "source": source, "reason": reason, "raw": raw}


def validate(raw: pd.DataFrame, registry: Registry, now: datetime, *, source: str = "feed",
             max_future_s: float = MAX_FUTURE_S) -> IngestResult:
    """Validate a raw read frame (columns as in RAW_COLUMNS; missing columns count as empty)."""
    df = raw.reindex(columns=RAW_COLUMNS).reset_index(drop=True)
    reason = pd.Series(pd.NA, index=df.index, dtype="object")
    free = np.ones(len(df), dtype=bool)                  # rows without a reason yet

    def flag(mask, text) -> None:
        """Record `text` for masked rows without a reason yet; `text` is a string, a Series, or a
        function of the row mask building the texts of those rows only (most batches are clean)."""
        m = np.asarray(mask, dtype=bool) & free
        if m.any():
            free[m] = False
            if callable(text):
                reason[m] = np.asarray(text(m), dtype=object)
            else:
                reason[m] = text if isinstance(text, str) else np.asarray(text, dtype=object)[m]

    ts = _parse_ts(df["ts"])
    flag(ts.isna() & df["ts"].notna(), "ts is not an ISO 8601 time with a zone, or epoch ms")
    flag(df["ts"].isna(), "ts missing")
    ahead_s = (ts - pd.Timestamp(now).tz_convert("UTC")).dt.total_seconds()
    flag(ahead_s > max_future_s, lambda m: "clock skew: ts is " + ahead_s[m].round(0).astype("Int64").astype("string").fillna("?") + " s ahead of the server")

    tag = df["tag_id"].astype("string").str.strip()
    flag(tag.isna() | (tag == ""), "tag_id missing")
    flag(~_known(tag, registry.tag_index), lambda m: "unknown tag " + tag[m].fillna(""))

    x, y = pd.to_numeric(df["x_m"], errors="coerce"), pd.to_numeric(df["y_m"], errors="coerce")
    has_xy_cols = df["x_m"].notna() | df["y_m"].notna() | df["floor_id"].notna()
    reader = df["reader_id"].astype("string").str.strip()
    is_reader = reader.notna() & (reader != "")
    flag(~is_reader & ~has_xy_cols, "neither reader_id nor x_m/y_m/floor_id given")
    flag(is_reader & has_xy_cols & x.notna(), "both reader_id and x_m/y_m given; send one shape per read")

    rssi = pd.to_numeric(df["rssi_dbm"], errors="coerce")
    antenna_raw = pd.to_numeric(df["antenna"], errors="coerce")
    bad_antenna = df["antenna"].notna() & ~(np.isfinite(antenna_raw.fillna(np.inf)) & (antenna_raw == antenna_raw.round())
                                            & (antenna_raw >= 0) & (antenna_raw < 65536))
    flag(is_reader & bad_antenna, "antenna is not a whole number 0..65535 (LLRP AntennaID is u16)")
    antenna = antenna_raw.where(~bad_antenna).fillna(1).astype("int64")
    flag(is_reader & df["rssi_dbm"].notna() & rssi.isna(), "rssi_dbm is not a number")
    flag(is_reader & ~np.isfinite(rssi.fillna(0.0)), "rssi_dbm is not finite")
    flag(is_reader & (rssi > 0), lambda m: "rssi_dbm=+" + rssi[m].astype("string").fillna("") + " is positive; RFID/BLE RSSI is negative")
    flag(is_reader & (rssi < MIN_RSSI_DBM), "rssi_dbm below -120 dBm is not a real read")
    keys = reader.fillna("") + ":" + antenna.astype(str)
    flag(is_reader & ~_known(keys, registry.antenna_index), lambda m: "unknown reader antenna " + keys[m])

    battery = pd.to_numeric(df["battery_pct"], errors="coerce")
    flag(df["battery_pct"].notna() & ~battery.between(0.0, 100.0).fillna(False).astype(bool),
         "battery_pct is not a number 0..100")

    floor = df["floor_id"].astype("string")
    is_pos = ~is_reader
    flag(is_pos & (x.isna() | y.isna()), "x_m/y_m missing or not numbers")
    flag(is_pos & ~floor.isin(list(registry.floor_bounds)).fillna(False).astype(bool), lambda m: "unknown floor " + floor[m].fillna("(none)"))
    flag(is_pos & ~(np.isfinite(x.fillna(np.inf)) & np.isfinite(y.fillna(np.inf))), "x_m/y_m not finite")
    bx0, by0, bx1, by1 = _floor_bounds(floor, registry)
    off = (x < bx0 - MAX_OFF_PLAN_M) | (x > bx1 + MAX_OFF_PLAN_M) | (y < by0 - MAX_OFF_PLAN_M) | (y > by1 + MAX_OFF_PLAN_M)
    flag(is_pos & off.fillna(False).astype(bool), "position outside the floor plan")

    origin = np.where(is_reader, keys, "rtls:" + floor.fillna(""))
    out = pd.DataFrame({"ts": ts, "tag_id": tag, "shape": np.where(is_reader, "reader", "position"),
                        "reader_id": reader.where(is_reader), "antenna": antenna.where(is_reader),
                        "rssi_dbm": rssi.where(is_reader), "x_m": x.where(is_pos), "y_m": y.where(is_pos),
                        "floor_id": floor.where(is_pos), "origin": origin, "battery_pct": battery})
    dup = out.duplicated(subset=["tag_id", "ts", "origin"], keep="first") & reason.isna()
    flag(dup, "duplicate read (same tag, time and reader in this batch)")

    bad = reason.notna().to_numpy()
    quarantine = pd.DataFrame({"received_at": pd.Timestamp(now), "source": source,
                               "reason": reason[bad].astype(str).to_numpy(),
                               "raw": _rows_json(raw.reset_index(drop=True).loc[bad])})
    accepted = out.loc[~bad, READ_COLUMNS + ["origin"] + OPTIONAL_COLUMNS].reset_index(drop=True)
    accepted["tag_id"] = accepted["tag_id"].astype(object)
    return IngestResult(accepted, quarantine.reindex(columns=QUARANTINE_COLUMNS))


def _parse_ts(s: pd.Series) -> pd.Series:
    """Timestamps → tz-aware UTC; numbers are epoch milliseconds; strings must carry a zone.
    Anything outside 2000–2100 is treated as unreadable (a corrupt clock or a wrong unit)."""
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    else:
        is_ts = s.map(lambda v: isinstance(v, pd.Timestamp | datetime)).astype(bool)
        if is_ts.any():
            aware = s[is_ts].map(lambda v: v.tzinfo is not None).astype(bool)
            vals = s[is_ts][aware]
            if len(vals):
                out[vals.index] = pd.to_datetime(vals.map(lambda v: pd.Timestamp(v).tz_convert("UTC").value), utc=True)
        num = pd.to_numeric(s.where(~is_ts), errors="coerce")
        num = num.where(num.between(EPOCH_MS_MIN, EPOCH_MS_MAX))
        is_num = num.notna()
        if is_num.any():
            out[is_num] = pd.to_datetime(num[is_num].astype("int64"), unit="ms", utc=True)
        is_str = s.map(lambda v: isinstance(v, str)).astype(bool) & ~is_num
        if is_str.any():
            txt = s[is_str].astype(str)
            has_zone = txt.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
            parsed = pd.to_datetime(txt.where(has_zone), utc=True, errors="coerce", format="ISO8601")
            out[is_str] = parsed
    lo, hi = pd.Timestamp(EPOCH_MS_MIN, unit="ms", tz="UTC"), pd.Timestamp(EPOCH_MS_MAX, unit="ms", tz="UTC")
    return out.where((out >= lo) & (out <= hi))


def _rows_json(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return []
    recs = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    return [orjson.dumps(r, default=str).decode() for r in recs]
