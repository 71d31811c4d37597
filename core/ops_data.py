"""The app's stores → the frames `core.operations` aggregates (live part of the operations page).

Sources, and what is inferred rather than recorded:
- alarms: the `alarms` table of the alarm service (core.alarms.tables). Alarms without a ward are
  counted in a note, not in per-ward charts (a per-bed rate needs a ward).
- bedside sessions: the `bedside_sessions` table (core.bedside_service); read by name, so a store
  without it (feature not merged yet) gives an empty frame and a note.
- device status intervals: INFERRED from presence. A device in a bay or single room within
  `NEAR_BED_M` of a bed (or at a bed antenna) is in use, in an equipment store idle, in a dirty
  utility room being cleaned; anywhere else (corridor, lift, in transit) it is not counted.
  `entities.status` is a static label in the sample site and is not used for history.
- staff room entry/exit events: presence changes of staff into / out of patient rooms (bay, single).
- bed stays: a patient whose tag is located anywhere on site occupies their home bed
  (a walk to the bathroom does not free the bed).
- dispenser uses, disposals, waste bins: the sample site has no tagged dispensers or disposal
  records yet, so the live frames are empty; the demo history (core.ops_history) generates them.
- storage excursions: from `storage.excursion` alarms (start = raised, end = resolved, or the
  last time the condition was seen while it is still open).

Everything here reads; nothing writes. Times are tz-aware UTC; the store keeps epoch ms.
"""
from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import and_, column, func, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from core.errors import InvalidInput, StorageError
from core.models import to_ms
from core.operations import (ALARM_COLUMNS, BED_COLUMNS, BIN_COLUMNS, DEVICE_INTERVAL_COLUMNS,
                             DISPENSER_COLUMNS, DISPOSAL_COLUMNS, EXCURSION_COLUMNS, PAR_COLUMNS,
                             ROOM_EVENT_COLUMNS, SESSION_COLUMNS, STAY_COLUMNS)
from core.storage import schema as s

PATIENT_ROOM_TYPES = ("bay", "single")
# A device this close to a bed centre counts as at that bed (site convention, not a standard:
# a bed is ~1 m wide and pumps / monitors stand beside it).
NEAR_BED_M = 1.5
ROOM_STATUS = {"equipment_store": "idle", "dirty_utility": "cleaning"}
# Idle devices a ward wants on hand (site convention; no standard gives par levels).
DEFAULT_PAR = {"infusion_pump": 3, "monitor": 2, "wheelchair": 2, "mobile_bed": 1}
EXCURSION_WARD_COLUMNS = EXCURSION_COLUMNS + ["ward_id"]
INTERVAL_COLUMNS = ["entity_id", "kind", "subtype", "home_ward_id", "home_id", "floor_id", "room_id", "bed_id",
                    "x_m", "y_m", "start", "end", "start_known", "end_known"]
UTC_US = "datetime64[us, UTC]"


class OpsFrames(NamedTuple):
    """Everything the operations page aggregates; each frame has the core.operations columns
    (extra columns are allowed). `notes` say where numbers come from and what is missing."""
    alarms: pd.DataFrame
    sessions: pd.DataFrame
    device_intervals: pd.DataFrame
    room_events: pd.DataFrame
    dispenser_events: pd.DataFrame
    stays: pd.DataFrame
    excursions: pd.DataFrame
    disposals: pd.DataFrame
    bins: pd.DataFrame
    beds: pd.DataFrame
    par: pd.DataFrame
    notes: tuple[str, ...] = ()


def empty_frame(columns: list[str], times: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    for c in times:
        df[c] = pd.Series(dtype=UTC_US)
    return df


_TIMES = {"alarms": ("raised_at", "acknowledged_at", "resolved_at"), "sessions": ("start", "end"),
          "device_intervals": ("start", "end"), "room_events": ("ts",), "dispenser_events": ("ts",),
          "stays": ("start", "end"), "excursions": ("start", "end"), "disposals": ("ts",),
          "bins": ("opened_at", "collected_at")}
_COLUMNS = {"alarms": ALARM_COLUMNS, "sessions": SESSION_COLUMNS, "device_intervals": DEVICE_INTERVAL_COLUMNS,
            "room_events": ROOM_EVENT_COLUMNS, "dispenser_events": DISPENSER_COLUMNS, "stays": STAY_COLUMNS,
            "excursions": EXCURSION_WARD_COLUMNS, "disposals": DISPOSAL_COLUMNS, "bins": BIN_COLUMNS}


def empty_of(name: str) -> pd.DataFrame:
    """An empty, correctly typed frame for OpsFrames field `name`."""
    return empty_frame(_COLUMNS[name], _TIMES[name])


def _ts(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.to_numeric(ms, errors="coerce"), unit="ms", utc=True).astype(UTC_US)


def _window_ms(start, end) -> tuple[int, int]:
    s_ms, e_ms = to_ms(start), to_ms(end)
    if e_ms <= s_ms:
        raise InvalidInput(f"empty window: end {end} is not after start {start}")
    return s_ms, e_ms


def _has_table(engine, name: str) -> bool:
    try:
        return inspect(engine).has_table(name)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot inspect the store: {exc}") from exc


def _read(engine, stmt) -> pd.DataFrame:
    try:
        with engine.connect() as conn:
            res = conn.execute(stmt)
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {str(exc).splitlines()[0][:200]}") from exc


# ------------------------------------------------------------------------------------- presence

def presence_intervals(engine, start, end) -> pd.DataFrame:
    """Where every entity was during [start, end): one row per stored place (floor, room, bed),
    from the last change at or before `start` and the changes inside the window, joined with the
    entity (kind, subtype, home ward, home bed/room). start_known / end_known say whether the
    interval's ends are real changes (False: cut by the window). Unknown places are dropped:
    they only end the previous interval."""
    s_ms, e_ms = _window_ms(start, end)
    c = s.presence_changes
    last_before = (select(c.c.tag_id, func.max(c.c.ts_ms).label("ts_ms"))
                   .where(c.c.ts_ms <= s_ms).group_by(c.c.tag_id).subquery())
    cols = [c.c.tag_id, c.c.entity_id, c.c.ts_ms, c.c.floor_id, c.c.room_id, c.c.bed_id, c.c.x_m, c.c.y_m]
    before = select(*cols).join(last_before, and_(last_before.c.tag_id == c.c.tag_id,
                                                   last_before.c.ts_ms == c.c.ts_ms))
    inside = select(*cols).where(c.c.ts_ms > s_ms, c.c.ts_ms < e_ms)
    ch = pd.concat([_read(engine, before), _read(engine, inside)], ignore_index=True)
    ent = _read(engine, select(s.entities.c.entity_id, s.entities.c.kind, s.entities.c.subtype,
                               s.entities.c.ward_id.label("home_ward_id"), s.entities.c.home_id))
    return _intervals(ch, ent, s_ms, e_ms)


def _intervals(ch: pd.DataFrame, ent: pd.DataFrame, s_ms: int, e_ms: int) -> pd.DataFrame:
    if ch.empty:
        return empty_frame(INTERVAL_COLUMNS, ("start", "end"))
    ch = ch.sort_values(["tag_id", "ts_ms"], kind="stable").drop_duplicates(["tag_id", "ts_ms"], keep="last")
    nxt = ch.groupby("tag_id")["ts_ms"].shift(-1)
    ch = ch.assign(start_ms=ch["ts_ms"].clip(lower=s_ms), end_ms=nxt.fillna(e_ms).astype("int64"),
                   start_known=ch["ts_ms"] >= s_ms, end_known=nxt.notna())
    ch = ch[ch["room_id"].notna() & (ch["end_ms"] > ch["start_ms"])]
    out = ch.merge(ent, on="entity_id", how="left")
    out["start"], out["end"] = _ts(out["start_ms"]), _ts(out["end_ms"])
    return out[INTERVAL_COLUMNS].reset_index(drop=True)


def _room_visits(iv: pd.DataFrame) -> pd.DataFrame:
    """Consecutive intervals of one entity in the same room (bed changes inside it) → one visit."""
    if iv.empty:
        return iv
    iv = iv.sort_values(["entity_id", "start"], kind="stable")
    same = ((iv["entity_id"] == iv["entity_id"].shift()) & (iv["room_id"] == iv["room_id"].shift())
            & (iv["start"] == iv["end"].shift()))
    g = iv.groupby((~same).cumsum())
    return pd.DataFrame({"entity_id": g["entity_id"].first(), "kind": g["kind"].first(),
                         "room_id": g["room_id"].first(), "start": g["start"].first(), "end": g["end"].last(),
                         "start_known": g["start_known"].first(), "end_known": g["end_known"].last()}
                        ).reset_index(drop=True)


def room_events(intervals: pd.DataFrame, rooms: pd.DataFrame) -> pd.DataFrame:
    """Staff entries into and exits from patient rooms (ROOM_EVENT_COLUMNS). Ends cut by the
    window are not events (we did not see the door)."""
    staff = intervals[intervals["kind"] == "staff"]
    patient_rooms = rooms[rooms["room_type"].isin(PATIENT_ROOM_TYPES)].set_index("room_id")["ward_id"]
    v = _room_visits(staff)
    v = v[v["room_id"].isin(patient_rooms.index)] if len(v) else v
    if v.empty:
        return empty_of("room_events")
    ward = v["room_id"].map(patient_rooms)
    enter = pd.DataFrame({"staff_id": v["entity_id"], "ward_id": ward, "room_id": v["room_id"],
                          "ts": v["start"], "event": "enter"})[v["start_known"].to_numpy()]
    leave = pd.DataFrame({"staff_id": v["entity_id"], "ward_id": ward, "room_id": v["room_id"],
                          "ts": v["end"], "event": "exit"})[v["end_known"].to_numpy()]
    out = pd.concat([enter, leave], ignore_index=True).sort_values("ts", kind="stable")
    return out.astype({"staff_id": "str", "ward_id": "str", "room_id": "str", "event": "str"}).reset_index(drop=True)


def _near_bed(iv: pd.DataFrame, beds: pd.DataFrame) -> pd.Series:
    """At a bed antenna, or within NEAR_BED_M of a bed centre in the same room."""
    at_bed = iv["bed_id"].notna()
    pos = iv[~at_bed & iv["x_m"].notna()].reset_index()
    m = pos.merge(beds[["room_id", "cx_m", "cy_m"]], on="room_id")
    dx = m["x_m"].astype("float64") - m["cx_m"].astype("float64")
    dy = m["y_m"].astype("float64") - m["cy_m"].astype("float64")
    close = np.hypot(dx, dy) <= NEAR_BED_M
    near_idx = m.loc[close, "index"].unique()
    return at_bed | iv.index.isin(near_idx)


def device_intervals(intervals: pd.DataFrame, rooms: pd.DataFrame, beds: pd.DataFrame) -> pd.DataFrame:
    """Device status intervals inferred from where devices were (DEVICE_INTERVAL_COLUMNS + room_id);
    ward = the device's home ward (utilisation of a ward's own stock)."""
    d = intervals[intervals["kind"] == "device"]
    if d.empty:
        return empty_of("device_intervals")
    rtype = d["room_id"].map(rooms.set_index("room_id")["room_type"])
    status = rtype.map(ROOM_STATUS)
    in_patient_room = rtype.isin(PATIENT_ROOM_TYPES)
    status = status.mask(in_patient_room & _near_bed(d, beds), "in_use")
    d = d.assign(status=status, device_type=d["subtype"], ward_id=d["home_ward_id"])[status.notna()]
    if d.empty:
        return empty_of("device_intervals")
    out = d.rename(columns={"entity_id": "device_id"})[DEVICE_INTERVAL_COLUMNS + ["room_id"]]
    return out.astype({"device_id": "str", "ward_id": "str", "device_type": "str", "status": "str"}).reset_index(drop=True)


def bed_stays(intervals: pd.DataFrame, beds: pd.DataFrame) -> pd.DataFrame:
    """A located patient occupies their home bed (STAY_COLUMNS + patient_id)."""
    p = intervals[(intervals["kind"] == "patient") & intervals["home_id"].isin(beds["bed_id"])]
    if p.empty:
        return empty_of("stays").assign(patient_id=pd.Series(dtype="str"))
    ward = p["home_id"].map(beds.set_index("bed_id")["ward_id"])
    return pd.DataFrame({"bed_id": p["home_id"].astype("str"), "ward_id": ward.astype("str"),
                         "start": p["start"], "end": p["end"],
                         "patient_id": p["entity_id"].astype("str")}).reset_index(drop=True)


# ------------------------------------------------------------------------------- feature tables

def read_alarms(engine, start, end) -> pd.DataFrame:
    """Alarms raised in [start, end) (ALARM_COLUMNS + location_id, drug_ids, details, last_seen_at),
    or None when the alarms table does not exist."""
    if not _has_table(engine, "alarms"):
        return None
    from core.alarms.tables import alarms as t
    s_ms, e_ms = _window_ms(start, end)
    df = _read(engine, select(t.c.alarm_id, t.c.kind, t.c.ward_id, t.c.priority, t.c.raised_ms,
                              t.c.acknowledged_ms, t.c.resolved_ms, t.c.last_seen_ms, t.c.escalation_level,
                              t.c.location_id, t.c.drug_ids, t.c.details)
               .where(t.c.raised_ms >= s_ms, t.c.raised_ms < e_ms))
    return pd.DataFrame({
        "alarm_id": df["alarm_id"].astype("str"), "kind": df["kind"].astype("str"),
        "ward_id": df["ward_id"].astype("object"), "priority": df["priority"].astype("str"),
        "raised_at": _ts(df["raised_ms"]), "acknowledged_at": _ts(df["acknowledged_ms"]),
        "resolved_at": _ts(df["resolved_ms"]), "last_seen_at": _ts(df["last_seen_ms"]),
        "escalation_level": pd.to_numeric(df["escalation_level"]).fillna(0).astype("int64"),
        "location_id": df["location_id"].astype("object"), "drug_ids": df["drug_ids"].astype("object"),
        "details": df["details"].astype("object")})


def _json_len(text) -> int:
    try:
        return len(json.loads(text)) if text else 0
    except (TypeError, ValueError):
        return 0


def _json_get(text, key):
    try:
        value = json.loads(text).get(key) if text else None
    except (TypeError, ValueError, AttributeError):
        return np.nan
    return float(value) if isinstance(value, (int, float)) else np.nan


def excursions_from_alarms(alarms: pd.DataFrame, now) -> pd.DataFrame:
    """Storage excursion episodes from `storage.excursion` alarms (EXCURSION_WARD_COLUMNS)."""
    x = alarms[alarms["kind"] == "storage.excursion"]
    if x.empty:
        return empty_of("excursions")
    end = x["resolved_at"].fillna(x["last_seen_at"]).fillna(pd.Timestamp(now).tz_convert("UTC"))
    return pd.DataFrame({"location_id": x["location_id"].fillna("unknown location").astype("str"),
                         "start": x["raised_at"], "end": end.astype(UTC_US),
                         "duration_s": (end - x["raised_at"]).dt.total_seconds(),
                         "drugs_affected": x["drug_ids"].map(_json_len).astype("int64"),
                         "mkt_c": x["details"].map(lambda d: _json_get(d, "mkt_c")),
                         "ward_id": x["ward_id"].astype("object")}).reset_index(drop=True)


BEDSIDE = table("bedside_sessions", column("staff_id"), column("patient_id"), column("bed_id"),
                column("start_ms"), column("end_ms"))


def read_bedside_sessions(engine, beds: pd.DataFrame, start, end) -> pd.DataFrame | None:
    """Bedside sessions overlapping [start, end) (SESSION_COLUMNS + bed_id), ward from the bed;
    None when the table does not exist (the bedside service is not installed)."""
    if not _has_table(engine, "bedside_sessions"):
        return None
    s_ms, e_ms = _window_ms(start, end)
    t = BEDSIDE
    df = _read(engine, select(t).where(t.c.start_ms < e_ms, (t.c.end_ms.is_(None)) | (t.c.end_ms > s_ms)))
    ward = df["bed_id"].map(beds.set_index("bed_id")["ward_id"])
    return pd.DataFrame({"staff_id": df["staff_id"].astype("str"), "ward_id": ward.astype("object"),
                         "start": _ts(df["start_ms"]), "end": _ts(df["end_ms"]),
                         "bed_id": df["bed_id"].astype("str")})


# ------------------------------------------------------------------------------------ site data

def beds_per_ward(site) -> pd.DataFrame:
    return site.beds.groupby("ward_id").size().rename("beds").reset_index()[BED_COLUMNS]


def par_levels_for(site, par: dict[str, int] | None = None) -> pd.DataFrame:
    """Par (idle devices wanted on hand) per ward × device type present in the site."""
    par = DEFAULT_PAR if par is None else par
    dev = site.entities[site.entities["kind"] == "device"][["ward_id", "subtype"]].drop_duplicates()
    dev = dev[dev["subtype"].isin(par)]
    return pd.DataFrame({"ward_id": dev["ward_id"].astype("str"), "device_type": dev["subtype"].astype("str"),
                         "par": dev["subtype"].map(par).astype("int64")}).sort_values(
        ["ward_id", "device_type"]).reset_index(drop=True)[PAR_COLUMNS]


# ------------------------------------------------------------------------------------ assembly

def live_frames(engine, site, start, end) -> OpsFrames:
    """The operations frames for [start, end) from the store, with notes on what is inferred or
    missing. `end` is normally now (open intervals run to it)."""
    notes = ["Device status is inferred from location: at a bed = in use, equipment store = idle, "
             "dirty utility = cleaning; elsewhere (corridor, in transit) not counted."]
    iv = presence_intervals(engine, start, end)
    alarms = read_alarms(engine, start, end)
    if alarms is None:
        notes.append("No alarm store yet (alarm service not installed): alarm charts use no live alarms.")
        alarms = empty_of("alarms").assign(last_seen_at=pd.Series(dtype=UTC_US))
    no_ward = alarms["ward_id"].isna() | ~alarms["ward_id"].isin(site.wards["ward_id"])
    if no_ward.any():
        notes.append(f"{int(no_ward.sum())} live alarm(s) without a ward are not in per-ward charts.")
    sessions = read_bedside_sessions(engine, site.beds, start, end)
    if sessions is None:
        notes.append("No bedside-session store yet (bedside service not installed): no live bedside time.")
        sessions = empty_of("sessions")
    notes.append("No hand-hygiene dispensers or disposal records in this site's live data.")
    return OpsFrames(alarms=alarms[~no_ward].reset_index(drop=True), sessions=sessions,
                     device_intervals=device_intervals(iv, site.rooms, site.beds),
                     room_events=room_events(iv, site.rooms), dispenser_events=empty_of("dispenser_events"),
                     stays=bed_stays(iv, site.beds), excursions=excursions_from_alarms(alarms[~no_ward], end),
                     disposals=empty_of("disposals"), bins=empty_of("bins"), beds=beds_per_ward(site),
                     par=par_levels_for(site), notes=tuple(notes))


def combine(*parts: OpsFrames) -> OpsFrames:
    """Concatenate OpsFrames (e.g. demo history + live); beds and par come from the first."""
    fields = {}
    for name in OpsFrames._fields:
        if name in ("beds", "par"):
            fields[name] = parts[0]._asdict()[name]
        elif name == "notes":
            fields[name] = tuple(n for p in parts for n in p.notes)
        else:
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            fields[name] = (pd.concat(frames, ignore_index=True) if frames else getattr(parts[0], name))
    return OpsFrames(**fields)


def for_wards(frames: OpsFrames, wards) -> OpsFrames:
    """Only the rows of the given wards (None or empty: all)."""
    if not wards:
        return frames
    keep = set(wards)
    out = {}
    for name, df in frames._asdict().items():
        out[name] = df[df["ward_id"].isin(keep)].reset_index(drop=True) if isinstance(df, pd.DataFrame) \
            and "ward_id" in df.columns else df
    # dispenser uses have no ward: keep those of the staff seen in the kept wards' room events
    out["dispenser_events"] = frames.dispenser_events[
        frames.dispenser_events["staff_id"].isin(set(out["room_events"]["staff_id"]))].reset_index(drop=True)
    return OpsFrames(**out)


# --------------------------------------------------------------------------------- page tables

def first_record(engine):
    """Time of the store's first presence change (where live history begins), or None."""
    c = s.presence_changes
    df = _read(engine, select(func.min(c.c.ts_ms).label("ts_ms")))
    ms = df["ts_ms"].iloc[0] if len(df) else None
    return None if ms is None or pd.isna(ms) else pd.Timestamp(int(ms), unit="ms", tz="UTC")


def build_rollup(frames: OpsFrames, start, end, tz: str):
    """The daily rollup of the big feeds for whole local days [start, end) (cache this)."""
    from core.operations import daily_rollup
    return daily_rollup(frames.alarms, frames.sessions, frames.device_intervals, frames.room_events,
                        frames.dispenser_events, start, end, tz=tz)


def rollup_for_wards(rollup, wards):
    """The rollup restricted to some wards (None or empty: all)."""
    if not wards:
        return rollup
    keep = set(wards)
    return type(rollup)(*(df[df["ward_id"].isin(keep)].reset_index(drop=True) for df in rollup))


def page_tables(frames: OpsFrames, rollup, start, end, now, tz: str,
                bin_limits_h: dict[str, float] | float = 48.0) -> dict[str, pd.DataFrame]:
    """Every table of the operations page for whole local days [start, end): the rollup-backed
    aggregates of `core.operations.operations_page` plus excursions, waste, par levels (at the
    latest instant the device data covers, ≤ now) and bed occupancy from the (small) raw frames.
    `frames` and `rollup` must already be restricted to the wards shown."""
    from core import operations as ops
    out = ops.operations_page(rollup, frames.beds, start, end, tz=tz)
    hist = ops._days(rollup.response_hist, start, end, tz)
    out["response_hist"] = (hist.groupby(["kind", "ward_id", "shift", "metric", "bucket_s"])["count"].sum()
                            .reset_index())
    out["excursions"] = ops.excursion_summary(frames.excursions, start, end)
    out["waste"] = ops.waste_compliance(frames.disposals, frames.bins, start, end, max_age_h=bin_limits_h)
    cover = frames.device_intervals["end"].max() if len(frames.device_intervals) else pd.NaT
    at = pd.Timestamp(now).tz_convert("UTC")
    if pd.notna(cover):
        at = min(at, cover - pd.Timedelta(milliseconds=1))
    par = ops.par_levels(frames.device_intervals, frames.par, at)
    out["par_levels"] = par.assign(as_of=at)
    # occupancy of the period so far: hours still to come today are not empty beds
    occ_end = min(pd.Timestamp(end).tz_convert("UTC"), pd.Timestamp(now).tz_convert("UTC"))
    if occ_end <= pd.Timestamp(start):
        occ_end = end
    out["occupancy"] = ops.bed_occupancy(frames.stays, frames.beds, start, occ_end)
    return out


def day_window(first_day, last_day, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[local midnight of first_day, local midnight after last_day) in `tz` (DST-safe: each end
    is localised on its own date). Dates, not datetimes."""
    lo, hi = pd.Timestamp(first_day), pd.Timestamp(last_day)
    if lo.tzinfo is not None or hi.tzinfo is not None:
        raise InvalidInput("day_window takes calendar dates, not times")
    if hi < lo:
        raise InvalidInput(f"last day {hi.date()} is before first day {lo.date()}")
    return (lo.normalize().tz_localize(tz, nonexistent="shift_forward", ambiguous=False),
            (hi.normalize() + pd.Timedelta(days=1)).tz_localize(tz, nonexistent="shift_forward", ambiguous=False))


# ----------------------------------------------------------------------------- contact tracing

# Positions for "within N metres" are sampled once per 20-s window per tag (a read whose ts falls
# in the first 2 s of the window; tags report about once a second, some reads drop), which keeps a day of reads
# to a few thousand rows per tag instead of ~86,000.
POSITION_SAMPLE_MS = 20_000
POSITION_SAMPLE_SLOT_MS = 2_000


def people_presence(engine, start, end) -> pd.DataFrame:
    """Presence intervals of people (staff and patients) for `core.proximity.colocation_contacts`:
    entity_id, role (staff role, or "patient"), room_id, start, end."""
    iv = presence_intervals(engine, start, end)
    iv = iv[iv["kind"].isin(["staff", "patient"])]
    role = iv["subtype"].where(iv["kind"] == "staff", "patient")
    return pd.DataFrame({"entity_id": iv["entity_id"].astype("str"), "role": role.astype("str"),
                         "room_id": iv["room_id"].astype("str"), "start": iv["start"], "end": iv["end"]}
                        ).reset_index(drop=True)


def people_positions(engine, tags: pd.DataFrame, start, end) -> pd.DataFrame:
    """Position samples of people's tags in (start, end] from raw reads (one per tag per 20-s
    window, see POSITION_SAMPLE_MS): entity_id, ts, x_m, y_m, floor_id. Raw reads are kept for
    raw_read_retention_days only; older periods have no positions."""
    s_ms, e_ms = _window_ms(start, end)
    r = s.raw_reads
    df = _read(engine, select(r.c.tag_id, r.c.ts_ms, r.c.x_m, r.c.y_m, r.c.floor_id)
               .where(r.c.ts_ms > s_ms, r.c.ts_ms <= e_ms, r.c.x_m.is_not(None),
                      (r.c.ts_ms % POSITION_SAMPLE_MS) < POSITION_SAMPLE_SLOT_MS))
    df = df.merge(tags[["tag_id", "entity_id"]], on="tag_id")
    return pd.DataFrame({"entity_id": df["entity_id"].astype("str"), "ts": _ts(df["ts_ms"]),
                         "x_m": df["x_m"].astype("float64"), "y_m": df["y_m"].astype("float64"),
                         "floor_id": df["floor_id"].astype("str")})
