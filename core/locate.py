"""Accepted reads → place: floor, room and bed, and a display position.

* Position reads (x_m, y_m, floor_id) are looked up in the floor plan (`FloorPlan.locate_idx`).
* Reader reads take the place of the antenna that heard them; when a tag is heard by several
  antennas in one window only the strongest counts (a bed antenna beats the room reader next door).

Hysteresis (N consecutive reads before a room change) lives in `core.presence`, which sees the
sequence of places per tag.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from core.ingest import OPTIONAL_COLUMNS
from core.models import LOCATED_COLUMNS


def strongest_per_window(reads: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """Keep, per tag and time window, the reader read with the highest RSSI."""
    if reads.empty:
        return reads
    # as_unit: pandas 3 keeps the resolution of the input (s, ms, us or ns); window on nanoseconds
    ts_ns = pd.to_datetime(reads["ts"], utc=True).dt.as_unit("ns").astype("int64")
    win = (ts_ns // int(window_s * 1e9)) if window_s > 0 else np.arange(len(reads))
    key = pd.DataFrame({"tag_id": reads["tag_id"].to_numpy(), "win": np.asarray(win)})
    order = np.lexsort((-reads["rssi_dbm"].to_numpy(dtype=float), key["win"].to_numpy(), pd.factorize(key["tag_id"])[0]))
    r = reads.iloc[order]
    k = key.iloc[order]
    first = ~k.duplicated(subset=["tag_id", "win"]).to_numpy()
    return r[first].sort_values("ts", kind="stable").reset_index(drop=True)


def locate_reads(accepted: pd.DataFrame, site, window_s: float = 1.0) -> pd.DataFrame:
    """Add floor_id, room_id, bed_id (None outside) and x_m/y_m (antenna position for reader reads)."""
    if accepted.empty:
        return pd.DataFrame(columns=LOCATED_COLUMNS + ["origin"])
    is_reader = (accepted["shape"] == "reader").to_numpy()
    parts = []
    pos = accepted[~is_reader]
    if len(pos):
        pos = pos.copy()
        room = np.empty(len(pos), dtype=object)
        bed = np.empty(len(pos), dtype=object)
        floors = pos["floor_id"].to_numpy(dtype=object)
        for fid in pd.unique(floors):
            m = floors == fid
            plan = site.floors[fid]
            ri, bi = plan.locate_idx(pos["x_m"].to_numpy()[m], pos["y_m"].to_numpy()[m])
            room[m] = np.append(plan.rooms["id"].to_numpy(dtype=object), None)[ri]
            bed[m] = np.append(plan.beds["id"].to_numpy(dtype=object), None)[bi]
        pos["room_id"], pos["bed_id"] = room, bed
        parts.append(pos)
    rd = accepted[is_reader]
    if len(rd):
        rd = strongest_per_window(rd, window_s)
        ant = site.readers.rename(columns={"x_m": "ax", "y_m": "ay", "floor_id": "afloor"})
        ant = ant.assign(antenna=ant["antenna"].astype(float))
        rd = rd.drop(columns=["x_m", "y_m", "floor_id"]).merge(
            ant[["reader_id", "antenna", "afloor", "room_id", "bed_id", "ax", "ay"]], on=["reader_id", "antenna"], how="left")
        rd = rd.rename(columns={"ax": "x_m", "ay": "y_m", "afloor": "floor_id"})
        rd["bed_id"] = rd["bed_id"].astype(object).where(rd["bed_id"].notna(), None)
        parts.append(rd)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    for col in ("floor_id", "room_id", "bed_id"):      # None, never NaN, for "not in any room / bed"
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    extra = [c for c in OPTIONAL_COLUMNS if c in out.columns]     # tag telemetry rides along (health)
    return out[LOCATED_COLUMNS + ["origin"] + extra].sort_values("ts", kind="stable").reset_index(drop=True)


def estimate_positions(reads: pd.DataFrame, readers: pd.DataFrame, window_s: float = 1.0) -> pd.DataFrame:
    """RSSI → (ts, tag_id, x_m, y_m) from fixed readers; see `core.positioning`."""
    from core.positioning import estimate_positions as _estimate
    return _estimate(reads, readers, window_s=window_s)


class BedIndex:
    """Beds as a static KD-tree, for "which beds is each person within `within_m` of" every tick.

    The tree over bed centres is built once per site (beds do not move); a query builds a small tree
    of the people and asks scipy for every pair within range, so 2,000 clinicians × 5,000 beds cost
    milliseconds, not the 10 M distance computations of a double loop."""

    def __init__(self, bed_ids, x_m, y_m):
        self.bed_ids = np.asarray(bed_ids, dtype=object)
        self._tree = cKDTree(np.column_stack([np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float)]))

    @classmethod
    def from_beds(cls, beds: pd.DataFrame) -> "BedIndex":
        """From a frame with bed_id, cx_m, cy_m (e.g. `Site.beds` of one floor)."""
        return cls(beds["bed_id"], beds["cx_m"], beds["cy_m"])

    def within(self, x_m, y_m, within_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person index, bed index, distance_m) of every person–bed pair closer than `within_m`,
        sorted by person then distance."""
        pts = np.column_stack([np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float)])
        if pts.size == 0 or self.bed_ids.size == 0:
            return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
        ok = np.isfinite(pts).all(axis=1)
        keep = np.flatnonzero(ok)
        pairs = cKDTree(pts[keep]).sparse_distance_matrix(self._tree, within_m, output_type="ndarray")
        who, bed, dist = keep[pairs["i"]], pairs["j"].astype(np.intp), pairs["v"]
        order = np.lexsort((dist, who))
        return who[order], bed[order], dist[order]
