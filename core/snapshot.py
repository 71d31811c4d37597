"""One frozen picture of a floor (or ward) per refresh, shared by every screen that shows it.

`build_floor_snapshot` reads presence once and derives everything a page needs: state
(Present/Stale/Unknown), age, display label and legend category. Pages never query the store for
live state themselves, so thirty ward screens cost one query per floor per refresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from core.models import to_ms
from core.presence import presence_state

KIND_ORDER = ["staff", "patient", "device"]
PAUSED_COLUMNS = ["entity_id", "label", "short_name", "bed_id", "ward_id", "floor_id"]


@dataclass(frozen=True)
class FloorSnapshot:
    floor_id: str | None
    taken_at: datetime
    markers: pd.DataFrame       # one row per tag (see build_floor_snapshot)
    # patients whose tracking is paused at their request: entity_id, label, short_name, bed_id, ward_id, floor_id
    # (never among the markers, so no page can place them)
    paused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAUSED_COLUMNS))

    def counts(self) -> dict[str, int]:
        return self.markers["state"].value_counts().to_dict()

    def on_map(self) -> pd.DataFrame:
        """Markers that claim a place (Present or Stale) on this floor."""
        m = self.markers
        return m[(m["state"] != "unknown") & m["x_m"].notna()]


def category(kind: pd.Series, subtype: pd.Series) -> pd.Series:
    """Legend category: staff by role, patients together, devices by type."""
    sub = subtype.fillna("").astype(str)
    return np.where(kind == "patient", "patient", kind.astype(str) + ":" + sub)


def build_floor_snapshot(repo, site, floor_id: str | None, now: datetime, *, stale_after_s: float,
                         unknown_after_s: float, show_identity: bool = True) -> FloorSnapshot:
    from core.security.privacy import opted_out_ids
    p = repo.presence(floor_id)
    snap = snapshot_from_presence(p, site, floor_id, now, stale_after_s=stale_after_s,
                                  unknown_after_s=unknown_after_s, show_identity=show_identity)
    return pause_tracking(snap, site, opted_out_ids(repo.engine), show_identity)


def pause_tracking(snap: FloorSnapshot, site, patient_ids: set[str], show_identity: bool) -> FloorSnapshot:
    """Take opted-out patients off the markers and list them (with their bed) as paused."""
    if not patient_ids:
        return snap
    pts = site.patients[site.patients["patient_id"].isin(patient_ids)]
    floors = site.beds.set_index("bed_id")["floor_id"]
    paused = pd.DataFrame({"entity_id": pts["patient_id"].to_numpy(),
                           "label": (pts["given"] + " " + pts["family"] if show_identity else pts["short_name"]).to_numpy(),
                           "short_name": pts["short_name"].to_numpy(),
                           "bed_id": pts["bed_id"].to_numpy(), "ward_id": pts["ward_id"].to_numpy(),
                           "floor_id": pts["bed_id"].map(floors).to_numpy()}, columns=PAUSED_COLUMNS)
    if snap.floor_id is not None:
        paused = paused[paused["floor_id"] == snap.floor_id]
    markers = snap.markers[~snap.markers["entity_id"].isin(patient_ids)].reset_index(drop=True)
    return FloorSnapshot(snap.floor_id, snap.taken_at, markers, paused.reset_index(drop=True))


def snapshot_from_presence(p: pd.DataFrame, site, floor_id, now: datetime, *, stale_after_s: float,
                           unknown_after_s: float, show_identity: bool = True) -> FloorSnapshot:
    now_ms = to_ms(now)
    if p.empty:
        cols = ["tag_id", "entity_id", "kind", "subtype", "category", "label", "name", "short_name", "ward_id",
                "floor_id", "room_id", "room_name", "bed_id", "x_m", "y_m", "since", "last_seen", "state", "age_s", "status"]
        return FloorSnapshot(floor_id, now, pd.DataFrame(columns=cols))
    m = p.copy()
    m["state"] = presence_state(m["last_seen_ms"].to_numpy(dtype=float), now_ms, stale_after_s, unknown_after_s)
    m["age_s"] = np.maximum(0.0, (now_ms - m["last_seen_ms"].to_numpy(dtype=float)) / 1000.0)
    m["since"] = pd.to_datetime(m["since_ms"], unit="ms", utc=True)
    m["last_seen"] = pd.to_datetime(m["last_seen_ms"], unit="ms", utc=True)
    m["category"] = category(m["kind"], m["subtype"])
    names = site.rooms.set_index("room_id")["name"]
    m["room_name"] = m["room_id"].map(names)
    is_patient = m["kind"] == "patient"
    m["label"] = np.where(is_patient & (not show_identity), m["short_name"], m["name"])
    if not show_identity:
        m["name"] = np.where(is_patient, m["short_name"], m["name"])
    return FloorSnapshot(floor_id, now, m.sort_values(["kind", "category", "label"], ignore_index=True))


def age_text(age_s: float) -> str:
    """'just now', '40 s ago', '3 min ago', '2 h ago' — how the UI says how old a fact is."""
    if age_s is None or not np.isfinite(age_s):
        return "never"
    if age_s < 5:
        return "just now"
    if age_s < 90:
        return f"{int(age_s)} s ago"
    if age_s < 5400:
        return f"{int(age_s // 60)} min ago"
    return f"{age_s / 3600:.1f} h ago"
