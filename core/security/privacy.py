"""Staff privacy and data retention.

- `filter_trackable`: staff are not located while off duty or inside privacy rooms (staff room,
  toilets, changing rooms). Withheld rows are counted, not silently lost: withholding is a policy
  outcome, not an error.
- `what_we_know_about`: the "what Wardsight knows about me" page — data held, how long it is kept,
  who looked at it (from the audit log).
- `purge`: retention. Raw reads go after `raw_read_days`; individual staff movement after
  `staff_history_hours`, folded first into anonymous hourly per-room staff counts.
- Patient tracking opt-outs (recorded, audited, reversible).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import InvalidInput, StorageError
from core.models import from_ms, series_to_ms, to_ms
from core.security import audit
from core.security.roles import require
from core.security.tables import audit_log, staff_presence_hourly, tracking_optouts, users
from core.storage.schema import entities, presence, presence_changes, raw_reads, rooms, shifts, tags

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
AUDIT_RETENTION = "6 years (HIPAA 45 CFR 164.316(b)(2)(i))"   # standards §6.2 [V]
OFF_DUTY, PRIVACY_ZONE = "off duty", "privacy zone"


# ---- live filter -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trackable:
    kept: pd.DataFrame
    withheld: dict[str, int] = field(default_factory=dict)   # reason -> rows withheld by policy

    @property
    def withheld_total(self) -> int:
        return sum(self.withheld.values())


def filter_trackable(frame: pd.DataFrame, shifts_df: pd.DataFrame, privacy_room_ids: Iterable[str],
                     now: datetime, *, staff_ids: Iterable[str] | None = None, id_col: str = "entity_id",
                     ts_col: str = "ts", grace_s: float = 0.0,
                     private_rows: np.ndarray | None = None) -> Trackable:
    """Drop staff rows that are in a privacy room or outside the person's shifts.

    `frame`: reads or presence rows with `id_col`, `room_id` and optionally `ts_col` (tz-aware; a
    presence snapshot without it is judged at `now`). Staff rows are those with kind == "staff"
    when a `kind` column exists, else those whose id is in `staff_ids`. `shifts_df`: staff_id plus
    start_ms/end_ms (or tz-aware start/end). `private_rows`: rows already known to be inside a
    privacy zone by other means (e.g. a position inside a privacy-zone polygon that no room
    matches). Non-staff rows are always kept."""
    _need(frame, [id_col, "room_id"], "frame")
    staff = _staff_mask(frame, id_col, staff_ids)
    t_ms = series_to_ms(frame[ts_col]) if ts_col in frame.columns else np.full(len(frame), to_ms(now), np.int64)
    private = staff & frame["room_id"].isin(set(privacy_room_ids)).to_numpy()
    if private_rows is not None:
        private = private | (staff & np.asarray(private_rows, dtype=bool))
    on_duty = _on_duty(frame[id_col].to_numpy(), t_ms, staff & ~private, shifts_df, int(grace_s * 1000))
    off_duty = staff & ~private & ~on_duty
    kept = frame.loc[~(private | off_duty)]
    return Trackable(kept, {OFF_DUTY: int(off_duty.sum()), PRIVACY_ZONE: int(private.sum())})


def _need(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"{what} lacks column(s) {missing}")


def _staff_mask(frame: pd.DataFrame, id_col: str, staff_ids: Iterable[str] | None) -> np.ndarray:
    if "kind" in frame.columns:
        return (frame["kind"] == "staff").to_numpy(dtype=bool)
    if staff_ids is None:
        raise InvalidInput("cannot tell staff rows apart: give the frame a 'kind' column or pass staff_ids")
    return frame[id_col].isin(set(staff_ids)).to_numpy(dtype=bool)


def _shift_bounds(shifts_df: pd.DataFrame) -> pd.DataFrame:
    if {"start_ms", "end_ms"} <= set(shifts_df.columns):
        start, end = shifts_df["start_ms"].to_numpy(np.int64), shifts_df["end_ms"].to_numpy(np.int64)
    elif {"start", "end"} <= set(shifts_df.columns):
        start, end = series_to_ms(shifts_df["start"]), series_to_ms(shifts_df["end"])
    else:
        raise InvalidInput("shifts need start_ms/end_ms or tz-aware start/end columns")
    _need(shifts_df, ["staff_id"], "shifts")
    return pd.DataFrame({"staff_id": shifts_df["staff_id"].to_numpy(), "start_ms": start, "end_ms": end})


def _on_duty(ids: np.ndarray, t_ms: np.ndarray, check: np.ndarray, shifts_df: pd.DataFrame,
             grace_ms: int) -> np.ndarray:
    """Vectorised interval membership: rows joined to their person's shifts (a handful each)."""
    result = np.zeros(len(ids), dtype=bool)
    if not check.any():
        return result
    rows = pd.DataFrame({"row": np.flatnonzero(check), "staff_id": ids[check], "t_ms": t_ms[check]})
    joined = rows.merge(_shift_bounds(shifts_df), on="staff_id", how="inner")
    inside = (joined["t_ms"] >= joined["start_ms"] - grace_ms) & (joined["t_ms"] < joined["end_ms"] + grace_ms)
    result[joined.loc[inside, "row"].unique()] = True
    return result


# ---- what we know about you -------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffDataSummary:
    staff_id: str
    holdings: pd.DataFrame   # item, rows, oldest, newest, retention
    viewers: pd.DataFrame    # ts, actor, role, action, reason: who looked at this person's data
    policy: tuple[str, ...]


def what_we_know_about(engine: Engine, staff_id: str | None, now: datetime, *, raw_read_days: float,
                       staff_history_hours: float, username: str | None = None,
                       viewer_limit: int = 200) -> StaffDataSummary:
    """Everything Wardsight stores about one staff member, its retention, and the audit trail of
    who viewed it. `username`: the signed-in account, counted even when it is linked to no badge
    (then no location data exists); others' actions on that account also count as views."""
    ident = staff_id or ""
    try:
        with engine.connect() as conn:
            tag_ids = list(conn.execute(select(tags.c.tag_id).where(tags.c.entity_id == ident)).scalars())
            usernames = set(conn.execute(select(users.c.username).where(users.c.staff_id == ident)).scalars())
            usernames |= {username} if username else set()
            account = users.c.username.in_(usernames)
            holdings = pd.DataFrame([
                _holding(conn, "user account", users.c.created_ms, account, "while employed"),
                _holding(conn, "current position", presence.c.last_seen_ms, presence.c.entity_id == ident,
                         "overwritten by the next read"),
                _holding(conn, "movement history", presence_changes.c.ts_ms,
                         presence_changes.c.entity_id == ident,
                         f"{hours_text(staff_history_hours)}, then only anonymous hourly room counts"),
                _holding(conn, "raw tag reads", raw_reads.c.ts_ms, raw_reads.c.tag_id.in_(tag_ids),
                         f"{raw_read_days:g} days"),
                _holding(conn, "shifts", shifts.c.start_ms, shifts.c.staff_id == ident, "as kept by rostering"),
                _holding(conn, "your actions in the audit log", audit_log.c.ts_ms,
                         audit_log.c.actor.in_(usernames), AUDIT_RETENTION),
            ])
            viewers = _viewers(conn, ident, sorted(usernames), viewer_limit)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read data held about {staff_id or username}: {exc}") from exc
    policy = ("You are not located while off duty or in the staff room, toilets or changing rooms.",
              f"Your individual movements are kept {hours_text(staff_history_hours)}, then only anonymous "
              "hourly counts per room remain.",
              "Managers see hourly counts per room, not your individual movements.",
              "Nobody has routine access to individual staff movement history; any access is audited.")
    return StaffDataSummary(ident or None, holdings, viewers, policy)


def hours_text(hours: float) -> str:
    """'14 days' for whole days of two or more, else '36 h'."""
    return f"{hours / 24:g} days" if hours >= 48 and hours % 24 == 0 else f"{hours:g} h"


def _holding(conn: Connection, item: str, ts_column, where, retention: str) -> dict:
    table = ts_column.table
    rows, oldest, newest = conn.execute(select(func.count(), func.min(ts_column), func.max(ts_column))
                                        .select_from(table).where(where)).one()
    return {"item": item, "rows": int(rows), "oldest": from_ms(oldest), "newest": from_ms(newest),
            "retention": retention}


def _viewers(conn: Connection, staff_id: str, usernames: list[str], limit: int) -> pd.DataFrame:
    """Audit rows about this person by someone else: views of their staff record, and actions on
    their account (unlock, second-factor reset ...)."""
    about_staff = and_(audit_log.c.object_type.in_(("staff", "entity")), audit_log.c.object_id == staff_id)
    about_account = and_(audit_log.c.object_type == "user", audit_log.c.object_id.in_(usernames),
                         audit_log.c.actor.not_in(usernames))
    query = (select(audit_log.c.ts_ms, audit_log.c.actor, audit_log.c.role, audit_log.c.action,
                    audit_log.c.reason)
             .where(or_(about_staff, about_account) if usernames else about_staff)
             .order_by(audit_log.c.seq.desc()).limit(limit))
    frame = pd.DataFrame([dict(r) for r in conn.execute(query).mappings()],
                         columns=["ts_ms", "actor", "role", "action", "reason"])
    frame.insert(0, "ts", pd.to_datetime(frame.pop("ts_ms").astype("int64"), unit="ms", utc=True))
    return frame


# ---- retention ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurgeResult:
    raw_reads_deleted: int
    staff_changes_deleted: int
    hourly_rows_written: int
    carried_over: int          # boundary rows kept so a person's current room survives the cut

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def purge(engine: Engine, now: datetime, raw_read_days: float, staff_history_hours: float, *,
          actor: str = "retention-job", role: str = "admin") -> PurgeResult:
    """Delete raw reads older than `raw_read_days` and staff presence changes older than
    `staff_history_hours` (cut on a whole hour), after folding the latter into
    staff_presence_hourly. One transaction; the purge itself is audited."""
    if raw_read_days <= 0 or staff_history_hours <= 0:
        raise InvalidInput("retention periods must be positive")
    now_ms = to_ms(now)
    raw_cut = now_ms - int(raw_read_days * DAY_MS)
    # whole-hour cut: an hour bucket is always aggregated by exactly one purge run
    staff_cut = (now_ms - int(staff_history_hours * HOUR_MS)) // HOUR_MS * HOUR_MS
    try:
        with engine.begin() as conn:
            n_raw = conn.execute(delete(raw_reads).where(raw_reads.c.ts_ms < raw_cut)).rowcount
            old_staff = and_(presence_changes.c.ts_ms < staff_cut,
                             presence_changes.c.entity_id.in_(select(entities.c.entity_id)
                                                              .where(entities.c.kind == "staff")))
            old = pd.DataFrame([dict(r) for r in conn.execute(select(presence_changes).where(old_staff)).mappings()],
                               columns=[c.name for c in presence_changes.columns])
            hourly = _hourly_staff_counts(old, staff_cut)
            written = _upsert_hourly(conn, hourly)
            carry = _carry_over(conn, old, staff_cut)
            n_staff = conn.execute(delete(presence_changes).where(old_staff)).rowcount
            if len(carry):
                conn.execute(insert(presence_changes), carry.to_dict("records"))
            result = PurgeResult(int(n_raw), int(n_staff), written, len(carry))
            audit.append(conn, ts=now, actor=actor, role=role, action="retention_purge", object_type="store",
                         object_id="raw_reads,presence_changes", detail={**result.to_dict(), "raw_cut_ms": raw_cut,
                                                                         "staff_cut_ms": staff_cut})
    except SQLAlchemyError as exc:
        raise StorageError(f"retention purge failed: {exc}") from exc
    return result


def _intervals(old: pd.DataFrame, cut_ms: int) -> pd.DataFrame:
    """Each change opens a stay [ts, next change of the same tag or the cut)."""
    ordered = old.sort_values(["tag_id", "ts_ms"], kind="stable")
    end = ordered.groupby("tag_id")["ts_ms"].shift(-1).fillna(cut_ms).astype("int64").clip(upper=cut_ms)
    return ordered.assign(end_ms=end)


def _hourly_staff_counts(old: pd.DataFrame, cut_ms: int) -> pd.DataFrame:
    """Distinct staff per (room, hour) whose stay overlaps the hour — vectorised with np.repeat."""
    stays = _intervals(old, cut_ms)
    stays = stays[stays["room_id"].notna() & (stays["end_ms"] > stays["ts_ms"])]
    if stays.empty:
        return pd.DataFrame(columns=["room_id", "hour_ms", "staff_count"])
    first = stays["ts_ms"].to_numpy(np.int64) // HOUR_MS
    last = (stays["end_ms"].to_numpy(np.int64) - 1) // HOUR_MS
    n = last - first + 1
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    buckets = pd.DataFrame({"entity_id": np.repeat(stays["entity_id"].to_numpy(), n),
                            "room_id": np.repeat(stays["room_id"].to_numpy(), n),
                            "hour_ms": (np.repeat(first, n) + offsets) * HOUR_MS})
    counts = buckets.drop_duplicates().groupby(["room_id", "hour_ms"]).size()
    return counts.rename("staff_count").reset_index()


def _upsert_hourly(conn: Connection, hourly: pd.DataFrame) -> int:
    if hourly.empty:
        return 0
    wards = dict(conn.execute(select(rooms.c.room_id, rooms.c.ward_id)).all())
    existing = pd.DataFrame([dict(r) for r in conn.execute(
        select(staff_presence_hourly.c.id, staff_presence_hourly.c.room_id, staff_presence_hourly.c.hour_ms)
        .where(staff_presence_hourly.c.hour_ms.between(int(hourly["hour_ms"].min()), int(hourly["hour_ms"].max()))))
        .mappings()], columns=["id", "room_id", "hour_ms"])
    merged = hourly.merge(existing, on=["room_id", "hour_ms"], how="left")
    fresh = merged[merged["id"].isna()]
    if len(fresh):
        conn.execute(insert(staff_presence_hourly), [
            {"ward_id": wards.get(r), "room_id": r, "hour_ms": int(h), "staff_count": int(c)}
            for r, h, c in zip(fresh["room_id"], fresh["hour_ms"], fresh["staff_count"])])
    # a bucket seen before (retention period shortened between runs): add, never overwrite
    for row_id, count in zip(merged.loc[merged["id"].notna(), "id"], merged.loc[merged["id"].notna(), "staff_count"]):
        conn.execute(update(staff_presence_hourly).where(staff_presence_hourly.c.id == int(row_id))
                     .values(staff_count=staff_presence_hourly.c.staff_count + int(count)))
    return len(merged)


def _carry_over(conn: Connection, old: pd.DataFrame, cut_ms: int) -> pd.DataFrame:
    """Boundary rows at the cut for people still in a known room then, so the current place and the
    next run's hourly counts stay right once the older history is gone."""
    cols = ["tag_id", "entity_id", "ts_ms", "floor_id", "room_id", "bed_id", "x_m", "y_m"]
    if old.empty:
        return pd.DataFrame(columns=cols)
    last = old.sort_values(["tag_id", "ts_ms"], kind="stable").groupby("tag_id").tail(1)
    last = last[last["room_id"].notna()]
    at_cut = set(conn.execute(select(presence_changes.c.tag_id)
                              .where(presence_changes.c.ts_ms == cut_ms,
                                     presence_changes.c.tag_id.in_(last["tag_id"].tolist()))).scalars())
    carry = last[~last["tag_id"].isin(at_cut)].assign(ts_ms=cut_ms)[cols]
    return carry.astype(object).where(carry.notna(), None)


# ---- patient tracking opt-outs ---------------------------------------------------------------------------
def record_optout(engine: Engine, patient_id: str, recorded_by: str, now: datetime, reason: str | None = None,
                  *, role: str | None = None) -> None:
    """Record that a patient declined location tracking (audited). With `role`, the role must hold
    the record_optout permission."""
    _set_optout(engine, patient_id, recorded_by, now, reason, role, active=True)


def withdraw_optout(engine: Engine, patient_id: str, recorded_by: str, now: datetime, reason: str | None = None,
                    *, role: str | None = None) -> None:
    """The patient agrees to tracking again (audited)."""
    _set_optout(engine, patient_id, recorded_by, now, reason, role, active=False)


def _set_optout(engine: Engine, patient_id: str, recorded_by: str, now: datetime, reason: str | None,
                role: str | None, active: bool) -> None:
    if role is not None:
        require(role, "record_optout")
    if not str(patient_id or "").strip() or not str(recorded_by or "").strip():
        raise InvalidInput("an opt-out needs a patient and the person recording it")
    try:
        with engine.begin() as conn:
            conn.execute(update(tracking_optouts).where(tracking_optouts.c.patient_id == patient_id,
                                                        tracking_optouts.c.active.is_(True)).values(active=False))
            if active:
                conn.execute(insert(tracking_optouts).values(patient_id=patient_id, recorded_by=recorded_by,
                                                             ts_ms=to_ms(now), reason=reason, active=True))
            audit.append(conn, ts=now, actor=recorded_by, role=role or "unknown",
                         action="tracking_optout" if active else "tracking_optout_withdrawn",
                         object_type="patient", object_id=patient_id, patient_id=patient_id, reason=reason)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot record opt-out: {exc}") from exc


def is_opted_out(engine: Engine, patient_id: str) -> bool:
    return patient_id in opted_out_ids(engine, [patient_id])


def opted_out_ids(engine: Engine, patient_ids: Iterable[str] | None = None) -> set[str]:
    """Patients with an active opt-out (all, or among `patient_ids`) — filter with `isin`."""
    query = select(tracking_optouts.c.patient_id).where(tracking_optouts.c.active.is_(True))
    if patient_ids is not None:
        query = query.where(tracking_optouts.c.patient_id.in_(list(patient_ids)))
    try:
        with engine.connect() as conn:
            return set(conn.execute(query).scalars())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read opt-outs: {exc}") from exc


def active_optouts(engine: Engine, patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Active opt-outs: patient_id, recorded_by, since (tz-aware), reason."""
    query = select(tracking_optouts.c.patient_id, tracking_optouts.c.recorded_by, tracking_optouts.c.ts_ms,
                   tracking_optouts.c.reason).where(tracking_optouts.c.active.is_(True))
    if patient_ids is not None:
        query = query.where(tracking_optouts.c.patient_id.in_(list(patient_ids)))
    try:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read opt-outs: {exc}") from exc
    frame = pd.DataFrame(rows, columns=["patient_id", "recorded_by", "ts_ms", "reason"])
    frame.insert(2, "since", pd.to_datetime(frame.pop("ts_ms").astype("int64"), unit="ms", utc=True))
    return frame
