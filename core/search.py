"""Search: find people and things, and the nearest available device of a type from a room.

Distances are *walking* distances along the ward corridors when the site has corridor geometry
(door → corridor → door, through the lift lobby between floors, plus `LIFT_PENALTY_M`), otherwise
straight-line; every answer says which.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LIFT_PENALTY_M = 40.0     # waiting for and riding a lift, expressed as metres of walking
CORRIDOR_Y_M = 8.5


def find(markers: pd.DataFrame, text: str) -> pd.DataFrame:
    """Case-insensitive match on name, short name, tag id or entity id."""
    t = (text or "").strip().lower()
    if not t:
        return markers
    hay = (markers["name"].fillna("") + " " + markers["short_name"].fillna("") + " " +
           markers["tag_id"].fillna("") + " " + markers["entity_id"].fillna("")).str.lower()
    return markers[hay.str.contains(t, regex=False)]


def walking_distance_m(site, from_room: str, to_floor, to_room, to_x, to_y) -> tuple[np.ndarray, str]:
    """Vectorised distance from a room's door to many targets. Returns (metres, method)."""
    rooms = site.rooms.set_index("room_id")
    has_corridors = (rooms["room_type"] == "corridor").any()
    src = rooms.loc[from_room]
    to_x, to_y = np.asarray(to_x, dtype=float), np.asarray(to_y, dtype=float)
    if not has_corridors:
        return np.hypot(to_x - src["cx_m"], to_y - src["cy_m"]), "straight-line"
    tr = rooms.reindex(pd.Index(to_room))
    dx, dy = tr["door_x_m"].to_numpy(dtype=float), tr["door_y_m"].to_numpy(dtype=float)
    dx = np.where(np.isnan(dx), to_x, dx)
    dy = np.where(np.isnan(dy), to_y, dy)
    inside = np.hypot(to_x - dx, to_y - dy) + np.abs(dy - CORRIDOR_Y_M)
    leave = abs(src["door_y_m"] - CORRIDOR_Y_M) + abs(src["cy_m"] - src["door_y_m"])
    same = np.asarray(to_floor, dtype=object) == src["floor_id"]
    along_same = np.abs(dx - src["door_x_m"])
    lobby = rooms[rooms["room_type"] == "lift_lobby"]
    lob_src = lobby[lobby["floor_id"] == src["floor_id"]]["cx_m"]
    lob_x_src = float(lob_src.iloc[0]) if len(lob_src) else src["door_x_m"]
    lob_by_floor = lobby.set_index("floor_id")["cx_m"]
    lob_x_dst = pd.Series(np.asarray(to_floor, dtype=object)).map(lob_by_floor).to_numpy(dtype=float)
    along_other = abs(src["door_x_m"] - lob_x_src) + LIFT_PENALTY_M + np.abs(np.nan_to_num(lob_x_dst) - dx)
    return leave + np.where(same, along_same, along_other) + inside, "walking (via corridors)"


def nearest_available(site, markers: pd.DataFrame, device_type: str, from_room: str, limit: int = 5) -> tuple[pd.DataFrame, str]:
    """Available (status 'available', currently Present) devices of a type, nearest first."""
    m = markers[(markers["kind"] == "device") & (markers["subtype"] == device_type) &
                (markers["status"] == "available") & (markers["state"] == "present") & markers["room_id"].notna()]
    if m.empty:
        return m.assign(distance_m=[]), "walking (via corridors)"
    d, method = walking_distance_m(site, from_room, m["floor_id"], m["room_id"], m["x_m"], m["y_m"])
    return m.assign(distance_m=np.round(d, 1)).sort_values("distance_m").head(limit), method
