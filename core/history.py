"""History from stored presence changes: where was a tag at time T, and its trail over a period."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from core.models import from_ms, to_ms


@dataclass(frozen=True)
class PlaceAt:
    entity_id: str
    at: datetime
    known: bool
    floor_id: str | None = None
    room_id: str | None = None
    bed_id: str | None = None
    since: datetime | None = None

    def describe(self, room_names: dict[str, str] | None = None) -> str:
        if not self.known:
            return "Unknown (no location claimed at that time)" if self.since else "Never seen before that time"
        name = (room_names or {}).get(self.room_id, self.room_id)
        bed = f", bed {self.bed_id}" if self.bed_id else ""
        return f"{name}{bed} (since {self.since:%H:%M:%S} UTC)"


def where_at(repo, entity_id: str, at: datetime) -> PlaceAt:
    row = repo.place_at(entity_id, to_ms(at))
    if row is None:
        return PlaceAt(entity_id, at, False)
    since = from_ms(int(row["ts_ms"]))
    if row.get("room_id") is None or (isinstance(row.get("room_id"), float)):
        return PlaceAt(entity_id, at, False, since=since)
    return PlaceAt(entity_id, at, True, row["floor_id"], row["room_id"], row.get("bed_id") or None, since)


def trail(repo, entity_id: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Presence changes in (start, end] with how long each place lasted."""
    ch = repo.presence_changes(entity_id, to_ms(start), to_ms(end))
    if ch.empty:
        return ch.assign(ts=[], duration_s=[])
    ch["ts"] = pd.to_datetime(ch["ts_ms"], unit="ms", utc=True)
    nxt = ch["ts_ms"].shift(-1).fillna(to_ms(end))
    ch["duration_s"] = (nxt - ch["ts_ms"]) / 1000.0
    return ch
