"""Bedside sessions in the running pipeline: each tick's located staff reads feed a
`core.bedside.BedsideTracker`; sessions are stored in `bedside_sessions` when they open and close,
and `current_bedside(...)` tells a page which bed (and patient) a clinician is at now.

    install(pipeline)                       # composition root (core.services.FEATURES)
    current_bedside(repo, "S010", now)      # → BedsideNow | None

Which reads count: position reads (x, y inside a bed polygon grown by `bedside_margin_m`) and reads
of a bed antenna (its bed_id). A room reader's antenna position says nothing about a bed, so those
reads only carry their bed_id (none). Off-duty badges emit nothing (simulator) or are withheld by the
privacy filter, which runs before this hook.

Demo mode only: `BedsideService.hold_badge` places a clinician's badge at a bed — a position read is
made every tick and sent through validate → locate like any feed read (replacing that badge's other
reads), so the demo can show arrival and walking away at any hour.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, bindparam, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.bedside import BedsideTracker, Session
from core.errors import InvalidInput, StorageError
from core.models import from_ms, to_ms, utc
from core.storage.schema import metadata

BEDSIDE_POINT_M = 0.85     # where a clinician stands: the simulator's bedside band is 0.75–0.95 m off the centre line
FRESH_S = 10.0             # an open session not refreshed for this long is not "now" (pipeline stopped)
HOLD_S = 900.0             # [E] a demo badge hold ends by itself after 15 min

bedside_sessions = Table(
    "bedside_sessions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("staff_id", String(64), nullable=False),
    Column("patient_id", String(64)),                 # NULL: an empty bed
    Column("bed_id", String(64), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger),                     # NULL while open
    Column("last_seen_ms", BigInteger, nullable=False),
    Index("ix_bedside_staff_start", "staff_id", "start_ms"),
    Index("ix_bedside_patient_start", "patient_id", "start_ms"),
)


@dataclass(frozen=True)
class BedsideNow:
    """Where a clinician is now: an open bedside session still being refreshed by the feed."""
    staff_id: str
    bed_id: str
    patient_id: str | None
    since: datetime
    last_seen: datetime
    session_id: int


@dataclass(frozen=True)
class BadgeHold:
    staff_id: str
    tag_id: str
    bed_id: str
    floor_id: str
    x_m: float
    y_m: float
    until: datetime


def _engine(engine_or_repo) -> Engine:
    return getattr(engine_or_repo, "engine", engine_or_repo)


def bed_polygons(site) -> pd.DataFrame:
    """bed_id, floor_id, geometry of every bed of the site (from the floor plans)."""
    parts = [plan.beds.assign(floor_id=fid)[["id", "floor_id", "geometry"]].rename(columns={"id": "bed_id"})
             for fid, plan in site.floors.items() if len(plan.beds)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["bed_id", "floor_id", "geometry"])


class BedsideService:
    """Per-pipeline bedside state: the tracker, the ids of stored open sessions, demo badge holds."""

    def __init__(self, site, engine: Engine, *, dwell_s: float = 5.0, exit_s: float = 8.0, margin_m: float = 0.5,
                 demo_mode: bool = False, registry=None):
        self.site, self.engine, self.demo_mode, self.registry = site, engine, demo_mode, registry
        self.beds = bed_polygons(site)
        patients_by_bed = dict(zip(site.patients["bed_id"], site.patients["patient_id"]))
        self.tracker = BedsideTracker(self.beds, patients_by_bed, dwell_s=dwell_s, exit_s=exit_s, margin_m=margin_m)
        tags = site.tags.merge(site.entities[["entity_id", "kind"]], on="entity_id")
        staff = tags[tags["kind"] == "staff"]
        self.staff_by_tag = pd.Series(staff["entity_id"].to_numpy(), index=staff["tag_id"].to_numpy())
        self.tag_by_staff = pd.Series(staff["tag_id"].to_numpy(), index=staff["entity_id"].to_numpy())
        self.open_ids: dict[tuple[str, str, int], int] = {}
        self.refreshed: dict[int, int] = {}            # open row id → last_seen_ms written
        self.holds: dict[str, BadgeHold] = {}
        self._lock = threading.Lock()                  # holds are changed from page threads
        self._orphans_closed = False
        self.last_tick: datetime | None = None

    # ---------- reads → samples
    def samples(self, located: pd.DataFrame) -> pd.DataFrame:
        """Located staff reads → tracker samples (ts, staff_id, bed_id, x_m, y_m, floor_id)."""
        if located is None or located.empty:
            return pd.DataFrame({"ts": pd.to_datetime([], utc=True), "staff_id": pd.Series([], dtype="str")})
        staff = located["tag_id"].map(self.staff_by_tag)
        rows = located[staff.notna().to_numpy()]
        is_reader = (rows["shape"] == "reader").to_numpy() if "shape" in rows else np.zeros(len(rows), bool)
        return pd.DataFrame({
            "ts": rows["ts"].to_numpy(), "staff_id": staff[staff.notna()].to_numpy(),
            # an antenna's place is its bed (if any), never its coordinates; positions are matched to beds here
            "bed_id": np.where(is_reader, rows["bed_id"].to_numpy(dtype=object), None),
            "x_m": np.where(is_reader, np.nan, rows["x_m"].to_numpy(dtype=float)),
            "y_m": np.where(is_reader, np.nan, rows["y_m"].to_numpy(dtype=float)),
            "floor_id": rows["floor_id"].to_numpy(dtype=object)})

    # ---------- tick hook
    def on_tick(self, result, now: datetime) -> None:
        if not self._orphans_closed:
            close_orphans(self.engine)
            self._orphans_closed = True
        opened, closed = self.tracker.update(self.samples(result.located), now)
        self.last_tick = utc(now)
        self._store(opened, closed)

    def _store(self, opened: list[Session], closed: list[Session]) -> None:
        try:
            with self.engine.begin() as conn:
                for s in opened:
                    key = (s.staff_id, s.bed_id, to_ms(s.start))
                    rid = conn.execute(insert(bedside_sessions).values(
                        staff_id=s.staff_id, patient_id=s.patient_id, bed_id=s.bed_id, start_ms=key[2], end_ms=None,
                        last_seen_ms=self._last_ms(s.staff_id, key[2]))).inserted_primary_key[0]
                    self.open_ids[key] = int(rid)
                for s in closed:
                    rid = self.open_ids.pop((s.staff_id, s.bed_id, to_ms(s.start)), None)
                    if rid is not None:
                        self.refreshed.pop(rid, None)
                        conn.execute(update(bedside_sessions).where(bedside_sessions.c.id == rid)
                                     .values(end_ms=to_ms(s.end), last_seen_ms=to_ms(s.end)))
                fresh = [{"rid": rid, "seen": self._last_ms(k[0], k[2])} for k, rid in self.open_ids.items()]
                fresh = [f for f in fresh if f["seen"] is not None and self.refreshed.get(f["rid"]) != f["seen"]]
                if fresh:
                    conn.execute(update(bedside_sessions).where(bedside_sessions.c.id == bindparam("rid"))
                                 .values(last_seen_ms=bindparam("seen")), fresh)
                    self.refreshed.update({f["rid"]: f["seen"] for f in fresh})
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot store bedside sessions: {exc}") from exc

    def _last_ms(self, staff_id: str, start_ms: int) -> int | None:
        t = self.tracker.tracks.get(staff_id)
        if t is None or t.bed is None:
            return start_ms
        return int(t.last_ns // 1_000_000)

    # ---------- demo badge holds (filter)
    def hold_badge(self, staff_id: str, bed_id: str, now: datetime, hold_s: float = HOLD_S) -> BadgeHold:
        """Demo mode: from the next tick on, `staff_id`'s badge reports a bedside position at `bed_id`."""
        if not self.demo_mode:
            raise InvalidInput("badge simulation is only available in demo mode (WARDSIGHT_DEMO)")
        if staff_id not in self.tag_by_staff.index:
            raise InvalidInput(f"{staff_id!r} has no staff badge on this site")
        bed = self.beds[self.beds["bed_id"] == bed_id]
        if bed.empty:
            raise InvalidInput(f"no bed {bed_id!r} on this site")
        floor_id, x, y = self._bedside_point(bed.iloc[0])
        hold = BadgeHold(staff_id, str(self.tag_by_staff[staff_id]), bed_id, floor_id, x, y,
                         utc(now) + timedelta(seconds=hold_s))
        with self._lock:
            self.holds[hold.tag_id] = hold
        return hold

    def release_badge(self, staff_id: str) -> None:
        """Demo mode: the badge walks away (its hold ends; the session closes after exit_s)."""
        with self._lock:
            self.holds = {t: h for t, h in self.holds.items() if h.staff_id != staff_id}

    def held_bed(self, staff_id: str) -> str | None:
        with self._lock:
            return next((h.bed_id for h in self.holds.values() if h.staff_id == staff_id), None)

    def busy(self) -> bool:
        """Holds active or sessions open: a process without a feed must keep ticking to close them."""
        return bool(self.holds) or bool(self.tracker.open_sessions())

    def _bedside_point(self, bed: pd.Series) -> tuple[str, float, float]:
        """A point beside the bed (not on it) inside the bed's room, like a clinician at the bedside."""
        plan = self.site.floors[bed["floor_id"]]
        c = bed["geometry"].centroid
        xs = np.array([c.x + BEDSIDE_POINT_M, c.x - BEDSIDE_POINT_M])
        room_idx, _ = plan.locate_idx(xs, np.array([c.y, c.y]))
        rooms = np.append(plan.rooms["id"].to_numpy(dtype=object), None)[room_idx]
        bed_room = plan.beds.set_index("id").at[bed["bed_id"], "room_id"]
        pick = int(np.argmax(rooms == bed_room)) if (rooms == bed_room).any() else 0
        return str(bed["floor_id"]), float(xs[pick]), float(c.y)

    def raw_hold_reads(self, now: datetime) -> pd.DataFrame:
        """This tick's raw position reads for the held badges (expired holds are dropped)."""
        ts = pd.Timestamp(utc(now))
        with self._lock:
            self.holds = {t: h for t, h in self.holds.items() if h.until > ts}
            holds = list(self.holds.values())
        return pd.DataFrame({"ts": [ts] * len(holds), "tag_id": [h.tag_id for h in holds],
                             "x_m": [h.x_m for h in holds], "y_m": [h.y_m for h in holds],
                             "floor_id": [h.floor_id for h in holds]})

    def inject(self, located: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, dict[str, int]]:
        """Read filter: replace held badges' reads by a validated, located bedside read."""
        with self._lock:
            held = set(self.holds)
        if not held or not self.demo_mode or self.registry is None:
            return located, {}
        from core.ingest import validate
        from core.locate import locate_reads
        raw = self.raw_hold_reads(now)
        own = located["tag_id"].isin(held).to_numpy() if len(located) else np.zeros(0, bool)
        extra = locate_reads(validate(raw, self.registry, now, source="demo-badge").accepted, self.site)
        parts = [df for df in (located[~own], extra) if len(df)]
        out = pd.concat(parts, ignore_index=True) if parts else located
        return out, {"demo_badge_override": int(own.sum())} if own.any() else {}


def demo_bed_choices(beds: pd.DataFrame, my_beds, ward_id: str | None) -> list[str]:
    """Beds the demo badge control offers: my patients' beds first, then the rest of my ward, then
    the other wards — so arriving at a patient not in my care (break-glass) can be shown too."""
    known = set(beds["bed_id"])
    mine = [b for b in dict.fromkeys(my_beds) if b in known]
    rest = beds[~beds["bed_id"].isin(mine)]
    other_ward = (rest["ward_id"] != ward_id).to_numpy()
    order = np.lexsort((rest["bed_id"].to_numpy(dtype=str), other_ward))
    return mine + rest["bed_id"].to_numpy(dtype=object)[order].tolist()


# ---------------------------------------------------------------- composition root

def install(pipeline) -> BedsideService:
    """Attach the bedside tracker to `pipeline` (hook) and the demo badge holds (filter)."""
    cfg = pipeline.settings
    svc = BedsideService(pipeline.site, pipeline.repo.engine, dwell_s=getattr(cfg, "bedside_dwell_s", 5.0),
                         exit_s=getattr(cfg, "bedside_exit_s", 8.0), margin_m=getattr(cfg, "bedside_margin_m", 0.5),
                         demo_mode=bool(cfg.demo_mode), registry=pipeline.registry)
    pipeline.bedside = svc
    pipeline.filters.append(svc.inject)
    pipeline.hooks.append(svc.on_tick)
    return svc


def service_of(pipeline) -> BedsideService | None:
    return getattr(pipeline, "bedside", None)


# ---------------------------------------------------------------- queries for pages

def close_orphans(engine_or_repo) -> int:
    """Close sessions left open by a previous process (ended at their last refresh)."""
    c = bedside_sessions.c
    with _engine(engine_or_repo).begin() as conn:
        return conn.execute(update(bedside_sessions).where(c.end_ms.is_(None)).values(end_ms=c.last_seen_ms)).rowcount


def current_bedside(engine_or_repo, staff_id: str, now: datetime, fresh_s: float = FRESH_S) -> BedsideNow | None:
    """The bed (and patient) `staff_id` is at now: their open session, if the feed refreshed it
    within `fresh_s` (an open row of a stopped pipeline does not count)."""
    c = bedside_sessions.c
    now_ms = to_ms(now)
    stmt = (select(c.id, c.staff_id, c.bed_id, c.patient_id, c.start_ms, c.last_seen_ms)
            .where(c.staff_id == staff_id, c.end_ms.is_(None), c.last_seen_ms >= now_ms - int(fresh_s * 1000))
            .order_by(c.start_ms.desc()).limit(1))
    try:
        with _engine(engine_or_repo).connect() as conn:
            row = conn.execute(stmt).first()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read bedside sessions: {exc}") from exc
    if row is None:
        return None
    return BedsideNow(row.staff_id, row.bed_id, row.patient_id, from_ms(row.start_ms), from_ms(row.last_seen_ms),
                      int(row.id))


def last_visit(engine_or_repo, staff_id: str, patient_id: str, before: datetime) -> datetime | None:
    """End of `staff_id`'s previous closed session with `patient_id` before `before` (for "new since")."""
    c = bedside_sessions.c
    stmt = (select(c.end_ms).where(c.staff_id == staff_id, c.patient_id == patient_id, c.end_ms.is_not(None),
                                   c.end_ms < to_ms(before)).order_by(c.end_ms.desc()).limit(1))
    with _engine(engine_or_repo).connect() as conn:
        ms = conn.execute(stmt).scalar()
    return from_ms(ms)


def sessions(engine_or_repo, since: datetime, staff_id: str | None = None) -> pd.DataFrame:
    """Stored sessions starting at or after `since`: staff_id, patient_id, bed_id, start, end (NaT: open)."""
    c = bedside_sessions.c
    stmt = select(c.id, c.staff_id, c.patient_id, c.bed_id, c.start_ms, c.end_ms, c.last_seen_ms) \
        .where(c.start_ms >= to_ms(since)).order_by(c.staff_id, c.start_ms)
    if staff_id is not None:
        stmt = stmt.where(c.staff_id == staff_id)
    with _engine(engine_or_repo).connect() as conn:
        res = conn.execute(stmt)
        df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    df["start"] = pd.to_datetime(df["start_ms"], unit="ms", utc=True)
    df["end"] = pd.to_datetime(df["end_ms"].astype("Float64"), unit="ms", utc=True)
    return df[["id", "staff_id", "patient_id", "bed_id", "start", "end", "last_seen_ms"]]


@dataclass(frozen=True)
class BadgeStatus:
    seen: bool
    on_shift: bool
    room_id: str | None
    age_s: float | None


def badge_status(repo, site, staff_id: str, now: datetime, stale_after_s: float) -> BadgeStatus:
    """Whether `staff_id`'s badge is being seen now (presence within stale_after_s) and on shift."""
    p = repo.presence()
    mine = p[p["entity_id"] == staff_id]
    on_shift = bool(site.on_duty(now).get(staff_id, False))
    if mine.empty:
        return BadgeStatus(False, on_shift, None, None)
    row = mine.sort_values("last_seen_ms").iloc[-1]
    age_s = (to_ms(now) - int(row["last_seen_ms"])) / 1000.0
    return BadgeStatus(age_s <= stale_after_s, on_shift, row["room_id"], age_s)


# ---------------------------------------------------------------- demo / test drivers

def arrive(pipeline, staff_id: str, bed_id: str, now: datetime, seconds: float | None = None) -> BedsideNow | None:
    """Demo mode: hold `staff_id`'s badge at `bed_id` and run one-second ticks of `pipeline` ending at
    `now` (or just after, if the pipeline has already ticked past the start), long enough for the
    dwell time, so the session is open. Returns it."""
    svc = service_of(pipeline)
    if svc is None:
        raise InvalidInput("the bedside service is not installed in this pipeline")
    span = int(np.ceil(seconds if seconds is not None else svc.tracker.dwell_ns / 1e9 + 2))
    start = utc(now) - timedelta(seconds=span)
    if svc.last_tick is not None and start <= svc.last_tick:      # ticks must move forward
        start = svc.last_tick + timedelta(seconds=1)
    svc.hold_badge(staff_id, bed_id, start)
    for k in range(span + 1):
        pipeline.process(pd.DataFrame(), start + timedelta(seconds=k), source="demo-badge")
    return current_bedside(svc.engine, staff_id, max(utc(now), svc.last_tick))


def leave(pipeline, staff_id: str, now: datetime) -> None:
    """Demo mode: release the badge and tick once after the exit time, closing the session."""
    svc = service_of(pipeline)
    if svc is None:
        raise InvalidInput("the bedside service is not installed in this pipeline")
    svc.release_badge(staff_id)
    after = max(utc(now), svc.last_tick or utc(now)) + timedelta(seconds=svc.tracker.exit_ns / 1e9)
    pipeline.process(pd.DataFrame(), after, source="demo-badge")
