"""Cloned / spoofed tag detection from located reads (standards §6.1 [E]: impossible travel and
simultaneous presence, after IEEE TETC 5(1) 2017 trace-based clone detection).

Consecutive reads of one tag are compared pairwise (vectorised): on one floor, the distance left
after subtracting the slack (the location uncertainty at both ends: `slack_m`, or the sum of the two
reads' `uncertainty_m` when the frame has that column — a room reader's zone is wider than an RTLS
fix) must be coverable at `v_max_mps`
in the elapsed time; between floors, at least `min_floor_change_s` per level must have passed. Two
copies of a tag reporting from different places produce a stream of such violations.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from core.errors import InvalidInput
from core.models import series_to_ms

V_MAX_MPS = 2.5             # [E] standards §6.1: walking ≈ 1.5–2 m/s; 2.5 m/s leaves room for hurrying
SLACK_M = 5.0               # [E] standards §6.1 "add reader-zone radius as slack": ~2.5 m zone at each end
SIMULTANEOUS_S = 1.0        # reads closer in time than this are "at the same moment"
MIN_FLOOR_CHANGE_S = 10.0   # [E] fastest lift ride between adjacent floors, doors included
REQUIRED = ["ts", "tag_id", "floor_id", "x_m", "y_m", "room_id"]
EVENT_COLUMNS = ["tag_id", "ts", "place_a", "place_b", "distance_m", "dt_s", "speed_mps", "reason"]

IMPOSSIBLE_SPEED = "impossible travel speed"
SIMULTANEOUS = "simultaneous reads in distant places"
FLOOR_TOO_FAST = "floor change faster than lift transit"


def detect_clones(reads: pd.DataFrame, *, v_max_mps: float = V_MAX_MPS, slack_m: float = SLACK_M,
                  simultaneous_s: float = SIMULTANEOUS_S, min_floor_change_s: float = MIN_FLOOR_CHANGE_S,
                  floor_levels: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Suspected clone events, one per physically impossible hop, sorted by ts:
    tag_id, ts (of the second read), place_a, place_b, distance_m (NaN across floors), dt_s,
    speed_mps (apparent: distance / dt, inf when simultaneous), reason.
    Reads without coordinates only take part in the floor check. An optional `uncertainty_m` column
    (radius of each read's location error) replaces `slack_m` by the pair's summed radii."""
    _validate(reads)
    if len(reads) < 2:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    cols = REQUIRED + (["uncertainty_m"] if "uncertainty_m" in reads.columns else [])
    df = reads[cols].assign(t_ms=series_to_ms(reads["ts"])).sort_values(["tag_id", "t_ms"], kind="stable")
    a, b = df.iloc[:-1], df.iloc[1:]
    same_tag = a["tag_id"].to_numpy() == b["tag_id"].to_numpy()
    dt_s = (b["t_ms"].to_numpy() - a["t_ms"].to_numpy()) / 1000.0
    fa, fb = a["floor_id"].to_numpy(dtype=object), b["floor_id"].to_numpy(dtype=object)
    known_floors = pd.notna(fa) & pd.notna(fb)
    same_floor = known_floors & (fa == fb)
    distance_m = np.hypot(b["x_m"].to_numpy(float) - a["x_m"].to_numpy(float),
                          b["y_m"].to_numpy(float) - a["y_m"].to_numpy(float))
    distance_m = np.where(same_floor, distance_m, np.nan)
    excess_m = np.maximum(distance_m - _pair_slack(a, b, slack_m), 0.0)
    too_fast = same_tag & same_floor & (excess_m > v_max_mps * dt_s)        # NaN distance compares False
    levels = _level_gap(fa, fb, floor_levels)
    floor_jump = same_tag & known_floors & (fa != fb) & (dt_s < min_floor_change_s * levels)
    hit = too_fast | floor_jump
    if not hit.any():
        return pd.DataFrame(columns=EVENT_COLUMNS)
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(dt_s > 0, distance_m / dt_s, np.where(distance_m > 0, np.inf, 0.0))
    reason = np.where(floor_jump, FLOOR_TOO_FAST, np.where(dt_s < simultaneous_s, SIMULTANEOUS, IMPOSSIBLE_SPEED))
    events = pd.DataFrame({
        "tag_id": b["tag_id"].to_numpy()[hit], "ts": b["ts"].to_numpy()[hit],
        "place_a": _place(a[hit]), "place_b": _place(b[hit]),
        "distance_m": distance_m[hit], "dt_s": dt_s[hit], "speed_mps": speed[hit], "reason": reason[hit]})
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    return events.sort_values(["ts", "tag_id"], kind="stable").reset_index(drop=True)[EVENT_COLUMNS]


def _validate(reads: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in reads.columns]
    if missing:
        raise InvalidInput(f"located reads lack column(s) {missing}")
    if not isinstance(reads["ts"].dtype, pd.DatetimeTZDtype):
        raise InvalidInput("located reads need a tz-aware 'ts' column")


def _pair_slack(a: pd.DataFrame, b: pd.DataFrame, slack_m: float) -> np.ndarray | float:
    """Summed location-error radii of each pair (half of `slack_m` stands in for a missing one)."""
    if "uncertainty_m" not in a.columns:
        return slack_m
    ua = pd.to_numeric(a["uncertainty_m"], errors="coerce").fillna(slack_m / 2).to_numpy(float)
    ub = pd.to_numeric(b["uncertainty_m"], errors="coerce").fillna(slack_m / 2).to_numpy(float)
    return ua + ub


def _level_gap(fa: np.ndarray, fb: np.ndarray, floor_levels: Mapping[str, int] | None) -> np.ndarray:
    """Number of levels between the two floors (1 when levels are not known)."""
    if not floor_levels:
        return np.ones(len(fa))
    la = pd.Series(fa).map(floor_levels).to_numpy(float)
    lb = pd.Series(fb).map(floor_levels).to_numpy(float)
    gap = np.abs(lb - la)
    return np.where(np.isnan(gap) | (gap < 1), 1.0, gap)


def _place(rows: pd.DataFrame) -> np.ndarray:
    """Room id, or floor:(x, y) when the read is not in a known room."""
    coords = (rows["floor_id"].astype(str) + ":(" + rows["x_m"].round(1).astype(str) + ", "
              + rows["y_m"].round(1).astype(str) + ")")
    return rows["room_id"].astype(object).where(rows["room_id"].notna(), coords).to_numpy(dtype=object)
