"""Security and privacy in the live pipeline (issue 5): `install(pipeline)` attaches

* a read filter — staff are not tracked off duty (site shifts) or inside privacy zones (staff room,
  staff toilet, changing rooms: by room type or by a `privacy` zone on the floor plan), and patients
  who opted out of tracking are not tracked at all. Withheld reads are never stored; they are
  counted per reason in `TickResult.withheld` (policy, not quarantine);
* a cloned-tag hook — every tick's located reads are compared with each tag's previous read
  (`core.security.clones.detect_clones`); a tag that makes `min_hops` physically impossible hops
  within `window_s` is a "suspected cloned tag" episode, stored in `security_events`;
* a retention timer — `privacy.purge` runs on the first tick and then once an hour.

Alarm contract: `pending_clone_conditions(source, now)` returns the clone episodes still live at
`now` as alarm-engine conditions (kind "security.cloned_tag", priority "high", key per tag). It
reads the store, so the alarm service in any process (app, MQTT ingest) can pull them each tick.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.storage.engine import read_frame
from core.errors import StorageError
from core.models import from_ms, series_to_ms, to_ms
from core.security import privacy
from core.security.clones import detect_clones
from core.security.tables import security_events

log = logging.getLogger(__name__)

PRIVACY_ROOM_TYPES = frozenset({"staff_room", "staff_toilet", "changing_room"})
PRIVACY_ZONE_TYPE = "privacy"
OPTED_OUT = "patient opt-out"
CLONE_KIND = "security.cloned_tag"
CLONE_EVENT = "cloned_tag"
POSITION_ERROR_M = 2.5      # [E] standards §6.1 slack: ~2.5 m RTLS error radius at each end of a hop
READER_ZONE_M = 6.0         # [E] standards §6.1 "reader-zone radius as slack": a room reader also hears the doorway
CLONE_WINDOW_S = 60.0       # [E] impossible hops are counted over the last minute per tag
CLONE_MIN_HOPS = 6          # [E] one RTLS outlier makes 2 hops (out and back); 3 coincident outliers in a
#                             minute are ~1 per 2 days on the sample ward, a live clone makes ~1 hop/s
CONDITION_S = 120.0         # an episode stays a live alarm condition this long after its last hop
RETENTION_INTERVAL_S = 3600.0
SHIFT_CACHE_S = 3600.0


class SecurityHooks:
    """State of the security features for one pipeline (one per process and feed)."""

    def __init__(self, site, engine: Engine, settings, *, window_s: float = CLONE_WINDOW_S,
                 min_hops: int = CLONE_MIN_HOPS, retention_interval_s: float = RETENTION_INTERVAL_S):
        self.site, self.engine, self.settings = site, engine, settings
        self.window_ms, self.min_hops = int(window_s * 1000), int(min_hops)
        self.retention_ms = int(retention_interval_s * 1000)
        tags = site.tags.merge(site.entities[["entity_id", "kind"]], on="entity_id", how="left")
        self.tag_entity = pd.Series(tags["entity_id"].to_numpy(), index=tags["tag_id"].to_numpy())
        self.tag_kind = pd.Series(tags["kind"].to_numpy(), index=tags["tag_id"].to_numpy())
        self.zones = privacy_zone_shapes(site)
        self.privacy_rooms = privacy_room_ids(site, self.zones)
        self.withheld_totals: dict[str, int] = {}
        self.last_purge_ms: int | None = None
        self.last_purge: privacy.PurgeResult | None = None
        self.last_now: datetime | None = None
        self._shifts: pd.DataFrame | None = None
        self._shifts_until_ms = -1
        self._last_read = pd.DataFrame()           # previous read of every tag: compared with the next tick
        self._hops = pd.DataFrame(columns=["tag_id", "t_ms"])
        self._episodes: dict[str, tuple[int, int]] = {}   # tag_id -> (event id, last_ms)

    # ---- read filter ---------------------------------------------------------------------------
    def privacy_filter(self, located: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, dict[str, int]]:
        """Keep what may be tracked; count staff off duty / in privacy zones and opted-out patients."""
        self.last_now = now
        if located.empty:
            return located, {}
        entity = located["tag_id"].map(self.tag_entity)
        kind = located["tag_id"].map(self.tag_kind)
        opted = (kind == "patient").to_numpy() & entity.isin(privacy.opted_out_ids(self.engine)).to_numpy()
        frame = located.assign(entity_id=entity.to_numpy(), kind=kind.to_numpy()).loc[~opted]
        result = privacy.filter_trackable(frame, self._shift_frame(now), self.privacy_rooms, now,
                                          private_rows=in_zones(self.zones, frame))
        counts = {k: v for k, v in {**result.withheld, OPTED_OUT: int(opted.sum())}.items() if v}
        for k, v in counts.items():
            self.withheld_totals[k] = self.withheld_totals.get(k, 0) + v
        return result.kept[located.columns], counts

    def _shift_frame(self, now: datetime) -> pd.DataFrame:
        now_ms = to_ms(now)
        if self._shifts is None or not (self._shifts_until_ms - SHIFT_CACHE_S * 1000 <= now_ms < self._shifts_until_ms):
            sh = self.site.shifts(now, 1, 1)     # in ms once, not per tick
            self._shifts = pd.DataFrame({"staff_id": sh["staff_id"].to_numpy(),
                                         "start_ms": series_to_ms(sh["start"]), "end_ms": series_to_ms(sh["end"])})
            self._shifts_until_ms = now_ms + int(SHIFT_CACHE_S * 1000)
        return self._shifts

    # ---- cloned tags ---------------------------------------------------------------------------
    def clone_hook(self, result, now: datetime) -> None:
        """Compare this tick's reads with each tag's previous read; record suspected clones."""
        located = result.located
        if located is None or located.empty:
            return
        reads = located.assign(uncertainty_m=np.where(located["shape"].to_numpy() == "reader",
                                                      READER_ZONE_M, POSITION_ERROR_M))
        cols = ["ts", "tag_id", "floor_id", "x_m", "y_m", "room_id", "uncertainty_m"]
        pool = reads[cols] if self._last_read.empty else pd.concat([self._last_read, reads[cols]], ignore_index=True)
        events = detect_clones(pool, floor_levels=self.site.levels)
        self._last_read = pool.sort_values("ts", kind="stable").groupby("tag_id", sort=False).tail(1)
        now_ms = to_ms(now)
        if len(events):
            hops = pd.DataFrame({"tag_id": events["tag_id"].to_numpy(),
                                 "t_ms": events["ts"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()})
            self._hops = hops if self._hops.empty else pd.concat([self._hops, hops], ignore_index=True)
        self._hops = self._hops[self._hops["t_ms"] >= now_ms - self.window_ms]
        counts = self._hops["tag_id"].value_counts()
        suspects = counts[counts >= self.min_hops]
        if len(suspects) and len(events):
            latest = events.groupby("tag_id").tail(1).set_index("tag_id")
            self._record(latest.loc[latest.index.intersection(suspects.index)], suspects, now_ms)

    def _record(self, latest: pd.DataFrame, hops: pd.Series, now_ms: int) -> None:
        """Open an episode per newly suspected tag, or extend the tag's live one."""
        try:
            with self.engine.begin() as conn:
                for tag_id, ev in latest.iterrows():            # a handful of suspects, not the feed
                    values = {"last_ms": now_ms, "hops": int(hops[tag_id]), "place_a": str(ev["place_a"]),
                              "place_b": str(ev["place_b"]), "reason": str(ev["reason"]),
                              "distance_m": _finite(ev["distance_m"]), "speed_mps": _finite(ev["speed_mps"])}
                    live = self._episodes.get(tag_id)
                    if live and now_ms - live[1] <= CONDITION_S * 1000:
                        conn.execute(update(security_events).where(security_events.c.id == live[0]).values(**values))
                        event_id = live[0]
                    else:
                        event_id = conn.execute(insert(security_events).values(
                            kind=CLONE_EVENT, tag_id=str(tag_id), entity_id=_or_none(self.tag_entity.get(tag_id)),
                            first_ms=now_ms, floor_id=_floor_of(self.site, ev["place_b"]), **values)
                        ).inserted_primary_key[0]
                        log.warning("suspected cloned tag %s: %s", tag_id, ev["reason"])
                    self._episodes[tag_id] = (int(event_id), now_ms)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot record security event: {exc}") from exc

    # ---- retention -----------------------------------------------------------------------------
    def retention_hook(self, result, now: datetime) -> None:
        """Apply the retention policy on the first tick, then every `retention_interval_s`."""
        now_ms = to_ms(now)
        if self.last_purge_ms is not None and now_ms - self.last_purge_ms < self.retention_ms:
            return
        self.last_purge_ms = now_ms          # also after a failure: retry next interval, not every tick
        self.last_purge = privacy.purge(self.engine, now, self.settings.raw_read_retention_days,
                                        self.settings.staff_history_hours)


# ---- privacy zones ---------------------------------------------------------------------------------
def privacy_zone_shapes(site) -> dict[str, Any]:
    """floor_id -> union of the floor's privacy-zone polygons (floors without any are absent).
    A zone is private when its `zone_type` is "privacy", or — plans loaded without that property —
    when its id starts with "Z-PRIV" or its name with "Privacy zone"."""
    out = {}
    for floor_id, plan in site.floors.items():
        zones = plan.zones
        if not len(zones):
            continue
        if "zone_type" in zones.columns:
            private = (zones["zone_type"] == PRIVACY_ZONE_TYPE).to_numpy(dtype=bool)
        else:
            private = (zones["id"].fillna("").str.upper().str.startswith("Z-PRIV")
                       | zones["name"].fillna("").str.lower().str.startswith("privacy zone")).to_numpy(dtype=bool)
        if private.any():
            out[floor_id] = shapely.union_all(zones["geometry"].to_numpy()[private])
    return out


def privacy_room_ids(site, zones: dict[str, Any]) -> frozenset[str]:
    """Rooms of a privacy type, plus rooms whose centre lies in a privacy zone."""
    rooms = site.rooms
    private = rooms["room_type"].isin(PRIVACY_ROOM_TYPES).to_numpy(dtype=bool).copy()
    for floor_id, shape in zones.items():
        on = (rooms["floor_id"] == floor_id).to_numpy()
        private[on] |= shapely.contains_xy(shape, rooms["cx_m"].to_numpy(float)[on], rooms["cy_m"].to_numpy(float)[on])
    return frozenset(rooms.loc[private, "room_id"])


def in_zones(zones: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Rows whose position lies inside their floor's privacy zones (vectorised per floor)."""
    out = np.zeros(len(frame), dtype=bool)
    if not zones or frame.empty:
        return out
    floors = frame["floor_id"].to_numpy(dtype=object)
    x, y = frame["x_m"].to_numpy(float), frame["y_m"].to_numpy(float)
    for floor_id, shape in zones.items():
        on = floors == floor_id
        if on.any():
            out[on] = shapely.contains_xy(shape, x[on], y[on])   # NaN coordinates answer False
    return out


# ---- alarm contract --------------------------------------------------------------------------------
_INSTALLED: list[SecurityHooks] = []


def pending_clone_conditions(source: Any = None, now: datetime | None = None,
                             within_s: float = CONDITION_S) -> list[dict[str, Any]]:
    """Suspected-clone episodes whose last impossible hop is at most `within_s` before `now`, as
    alarm conditions: kind "security.cloned_tag", priority "high", key "security.cloned_tag:<tag>",
    subject_id (tag), floor_id, room_id (where it was last seen, when a room), message, details.

    `source`: an Engine, a Repository, a Pipeline or None (the pipeline installed last in this
    process). `now`: defaults to the time of that pipeline's latest tick."""
    hooks = _INSTALLED[-1] if _INSTALLED else None
    engine = _engine_of(source) if source is not None else (hooks.engine if hooks else None)
    now = now or (hooks.last_now if hooks else None)
    if engine is None or now is None:
        return []
    cut = to_ms(now) - int(within_s * 1000)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(security_events).where(security_events.c.kind == CLONE_EVENT,
                                                              security_events.c.last_ms >= cut)
                                .order_by(security_events.c.last_ms)).mappings().all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read security events: {exc}") from exc
    latest = {r["tag_id"]: r for r in rows}          # newest episode per tag
    return [_condition(r) for r in latest.values()]


def _condition(r) -> dict[str, Any]:
    where = f"{r['place_a']} and {r['place_b']}"
    dist = "" if r["distance_m"] is None else f" {r['distance_m']:.0f} m apart"
    room = r["place_b"] if r["place_b"] and ":" not in r["place_b"] else None
    return {"kind": CLONE_KIND, "priority": "high", "key": f"{CLONE_KIND}:{r['tag_id']}",
            "subject_id": r["tag_id"], "floor_id": r["floor_id"], "room_id": room,
            "message": (f"Suspected cloned tag {r['tag_id']}" + (f" ({r['entity_id']})" if r["entity_id"] else "")
                        + f": seen in {where}{dist} — {r['reason']}, {r['hops']} impossible hops"),
            "details": {"event_id": int(r["id"]), "entity_id": r["entity_id"], "hops": int(r["hops"]),
                        "first_seen": from_ms(r["first_ms"]).isoformat(), "last_seen": from_ms(r["last_ms"]).isoformat(),
                        "speed_mps": r["speed_mps"], "reason": r["reason"]}}


def security_event_log(engine: Engine, since_ms: int | None = None, limit: int = 200) -> pd.DataFrame:
    """Recorded security events, newest first (audit viewer)."""
    query = select(security_events).order_by(security_events.c.last_ms.desc()).limit(limit)
    if since_ms is not None:
        query = query.where(security_events.c.last_ms >= since_ms)
    return read_frame(engine, query, "security events")


def _engine_of(source: Any) -> Engine:
    for path in (("engine",), ("repo", "engine")):
        obj = source
        for attr in path:
            obj = getattr(obj, attr, None)
        if isinstance(obj, Engine):
            return obj
    if isinstance(source, Engine):
        return source
    raise TypeError(f"cannot find a store in {type(source).__name__}")


def _finite(v) -> float | None:
    v = float(v) if v is not None and not pd.isna(v) else None
    return v if v is not None and np.isfinite(v) else None


def _or_none(v) -> str | None:
    return None if v is None or pd.isna(v) else str(v)


def _floor_of(site, place: str) -> str | None:
    place = str(place)
    if ":(" in place:
        return place.split(":(")[0]
    floors = site.rooms.set_index("room_id")["floor_id"]
    return str(floors[place]) if place in floors.index else None


def install(pipeline) -> SecurityHooks:
    """Attach the privacy filter, the clone hook and the retention timer to `pipeline`."""
    hooks = SecurityHooks(pipeline.site, pipeline.repo.engine, pipeline.settings)
    pipeline.filters.append(hooks.privacy_filter)
    pipeline.hooks.extend([hooks.clone_hook, hooks.retention_hook])
    pipeline.security = hooks
    _INSTALLED[:] = [hooks]
    return hooks
