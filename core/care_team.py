"""Care team: which nurses and doctors care for which patients, per shift.

A shift is a concrete window (start, end) of a ward, from the staff shift patterns in the site
description (`Site.shifts`). For every ward shift that runs, default assignments are seeded once
(idempotent, safe across processes): the ward's on-shift nurses (charge nurse included) split the
ward's beds into contiguous runs, and the ward's on-shift doctors cover all its patients. A charge
nurse or manager can then change them; every change is audited in the same transaction.

Rows are never deleted: a removed assignment becomes inactive, so "was this ward shift seeded?" and
"who changed what" stay answerable. In demo mode, demo staff who are off shift get a *demo cover*
shift with the patients their pattern shift would give them, so the demo works at any hour.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import (BigInteger, Boolean, Column, Index, Integer, String, Table, UniqueConstraint, and_, insert,
                        select, update)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.errors import AccessDenied, InvalidInput, StorageError
from core.models import to_ms, utc
from core.security import audit
from core.storage.schema import metadata

NURSING_ROLES = ("nurse", "charge_nurse")
DOCTOR_ROLES = ("doctor",)
# [E] UK ward practice: the shift's charge nurse allocates patients; a ward manager may too.
EDIT_ROLES = frozenset({"charge_nurse", "manager"})
DEMO_COVER_H = 12.5        # same length as the site's shift patterns (core.site.SHIFT_PATTERNS)
COLUMNS = ["staff_id", "patient_id", "ward_id", "staff_role", "shift_start", "shift_end", "source", "changed_by",
           "changed_at"]

care_assignments = Table(
    "care_assignments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ward_id", String(64), nullable=False),
    Column("shift_start_ms", BigInteger, nullable=False),
    Column("shift_end_ms", BigInteger, nullable=False),
    Column("staff_id", String(64), nullable=False),
    Column("staff_role", String(40), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("source", String(20), nullable=False),            # default | manual | demo_cover
    Column("active", Boolean, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_ms", BigInteger, nullable=False),
    UniqueConstraint("shift_start_ms", "staff_id", "patient_id", name="uq_care_assignment"),
    Index("ix_care_staff", "staff_id", "shift_end_ms"),
    Index("ix_care_patient", "patient_id", "shift_end_ms"),
    Index("ix_care_ward_shift", "ward_id", "shift_start_ms"),
)


def _engine(engine_or_repo) -> Engine:
    return getattr(engine_or_repo, "engine", engine_or_repo)


def _frame(engine: Engine, stmt) -> pd.DataFrame:
    try:
        with engine.connect() as conn:
            res = conn.execute(stmt)
            df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read care assignments: {str(exc).splitlines()[0][:200]}") from exc
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ms, UTC]" if c in ("shift_start", "shift_end", "changed_at")
                                          else "str") for c in COLUMNS})
    out = df.rename(columns={"changed_ms": "changed_at"})
    for src, dst in (("shift_start_ms", "shift_start"), ("shift_end_ms", "shift_end")):
        out[dst] = pd.to_datetime(out.pop(src), unit="ms", utc=True)
    out["changed_at"] = pd.to_datetime(out["changed_at"], unit="ms", utc=True)
    return out[COLUMNS]


# ---------------------------------------------------------------- shifts and the default split

def ward_shifts(site, ward_id: str, now: datetime, ahead: int = 1) -> pd.DataFrame:
    """The ward's shift windows (start, end, pattern) running at `now` plus the next `ahead` ones."""
    sh = site.shifts(now, 1, 1)
    staff = site.entities.set_index("entity_id")
    sh = sh[(sh["ward_id"] == ward_id) & sh["staff_id"].map(staff["subtype"]).isin(NURSING_ROLES + DOCTOR_ROLES)]
    sh = sh.assign(pattern=sh["staff_id"].map(staff["shift"]))
    win = sh.drop_duplicates(["start", "end"]).sort_values("start")[["start", "end", "pattern"]]
    ts = pd.Timestamp(utc(now))
    live = win[(win["start"] <= ts) & (ts < win["end"])]
    later = win[win["start"] > ts].head(ahead)
    return pd.concat([live, later], ignore_index=True)


def shift_staff(site, ward_id: str, shift_start: datetime) -> pd.DataFrame:
    """Nurses and doctors of the ward whose shift starts at `shift_start`: staff_id, name, role."""
    sh = site.shifts(shift_start, 0, 0)
    ids = sh[(sh["ward_id"] == ward_id) & (sh["start"] == pd.Timestamp(utc(shift_start)))]["staff_id"]
    ent = site.entities.set_index("entity_id")
    out = pd.DataFrame({"staff_id": ids.to_numpy(), "name": ids.map(ent["name"]).to_numpy(),
                        "role": ids.map(ent["subtype"]).to_numpy()})
    return out[out["role"].isin(NURSING_ROLES + DOCTOR_ROLES)].sort_values(["role", "staff_id"]).reset_index(drop=True)


def _beds_in_order(site, ward_id: str) -> pd.DataFrame:
    """The ward's occupied beds in floor-plan order (bays and singles as drawn): bed_id, patient_id."""
    beds = site.beds[site.beds["ward_id"] == ward_id][["bed_id"]]
    return beds.merge(site.patients[["bed_id", "patient_id"]], on="bed_id", how="inner")


def default_assignments(site, ward_id: str, staff_ids: list[str]) -> pd.DataFrame:
    """staff_id, staff_role, patient_id: nurses split the beds in contiguous runs (charge nurses last,
    so they take the smallest remainder); every doctor covers every patient."""
    roles = site.entities.set_index("entity_id")["subtype"]
    staff = pd.Series(list(dict.fromkeys(staff_ids)), dtype="str")
    role = staff.map(roles)
    nurses = staff[role == "nurse"].sort_values().tolist() + staff[role == "charge_nurse"].sort_values().tolist()
    doctors = staff[role.isin(DOCTOR_ROLES)].sort_values().tolist()
    beds = _beds_in_order(site, ward_id)
    parts = []
    if nurses and len(beds):
        for nurse, idx in zip(nurses, np.array_split(np.arange(len(beds)), len(nurses))):
            parts.append(pd.DataFrame({"staff_id": nurse, "staff_role": roles[nurse],
                                       "patient_id": beds["patient_id"].to_numpy()[idx]}))
    for doc in doctors:
        parts.append(pd.DataFrame({"staff_id": doc, "staff_role": roles[doc], "patient_id": beds["patient_id"].to_numpy()}))
    if not parts:
        return pd.DataFrame({"staff_id": [], "staff_role": [], "patient_id": []}, dtype="str")
    return pd.concat(parts, ignore_index=True)


def _insert_ignore(conn: Connection, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.execute(insert(care_assignments).prefix_with("OR IGNORE"), rows)
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        conn.execute(pg_insert(care_assignments).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - other dialects
        conn.execute(insert(care_assignments), rows)


def _rows(frame: pd.DataFrame, ward_id: str, start_ms: int, end_ms: int, source: str, by: str, now_ms: int) -> list[dict]:
    return [{"ward_id": ward_id, "shift_start_ms": start_ms, "shift_end_ms": end_ms, "staff_id": r.staff_id,
             "staff_role": r.staff_role, "patient_id": r.patient_id, "source": source, "active": True,
             "changed_by": by, "changed_ms": now_ms} for r in frame.itertuples(index=False)]


def seed_shift(engine_or_repo, site, ward_id: str, start: datetime, end: datetime, now: datetime) -> int:
    """Seed the default assignments of one ward shift unless it was seeded before. Returns rows added."""
    engine = _engine(engine_or_repo)
    start_ms, end_ms = to_ms(start), to_ms(end)
    c = care_assignments.c
    sh = site.shifts(start, 0, 0)
    on = sh[(sh["ward_id"] == ward_id) & (sh["start"] == pd.Timestamp(utc(start)))]["staff_id"].tolist()
    plan = default_assignments(site, ward_id, on)
    try:
        with engine.begin() as conn:
            seeded = conn.execute(select(c.id).where(c.ward_id == ward_id, c.shift_start_ms == start_ms,
                                                     c.source == "default").limit(1)).first()
            if seeded is not None or plan.empty:
                return 0
            _insert_ignore(conn, _rows(plan, ward_id, start_ms, end_ms, "default", "system", to_ms(now)))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot seed care assignments: {exc}") from exc
    return len(plan)


def ensure_seeded(engine_or_repo, site, now: datetime, demo_staff: list[str] | tuple[str, ...] = ()) -> int:
    """Seed every ward shift running at `now` (idempotent); then give each of `demo_staff` who has no
    live assignment a demo cover shift. Returns rows added."""
    added = 0
    for ward_id in site.wards["ward_id"]:
        for w in ward_shifts(site, ward_id, now, ahead=0).itertuples(index=False):
            added += seed_shift(engine_or_repo, site, ward_id, w.start.to_pydatetime(), w.end.to_pydatetime(), now)
    for staff_id in demo_staff:
        added += _demo_cover(engine_or_repo, site, staff_id, now)
    return added


def _demo_cover(engine_or_repo, site, staff_id: str, now: datetime) -> int:
    if not live_assignments(engine_or_repo, now, staff_id=staff_id).empty:
        return 0
    staff = site.entities.set_index("entity_id")
    if staff_id not in staff.index or not staff.at[staff_id, "ward_id"]:
        return 0
    ward, pattern = staff.at[staff_id, "ward_id"], staff.at[staff_id, "shift"]
    same = staff[(staff["kind"] == "staff") & (staff["ward_id"] == ward) & (staff["shift"] == pattern)]
    plan = default_assignments(site, ward, same.index.tolist())
    plan = plan[plan["staff_id"] == staff_id]
    start = pd.Timestamp(utc(now)).floor("h")
    end = start + pd.Timedelta(hours=DEMO_COVER_H)
    with _engine(engine_or_repo).begin() as conn:
        _insert_ignore(conn, _rows(plan, ward, to_ms(start), to_ms(end), "demo_cover", "demo-seed", to_ms(now)))
    return len(plan)


# ---------------------------------------------------------------- reading

def live_assignments(engine_or_repo, now: datetime, *, staff_id: str | None = None, patient_id: str | None = None,
                     ward_id: str | None = None) -> pd.DataFrame:
    """Active assignments whose shift runs at `now` (columns COLUMNS; times tz-aware UTC). The
    staff_id / patient_id / shift_start / shift_end columns feed `core.bedside.care_context`."""
    c = care_assignments.c
    now_ms = to_ms(now)
    stmt = select(c.staff_id, c.patient_id, c.ward_id, c.staff_role, c.shift_start_ms, c.shift_end_ms, c.source,
                  c.changed_by, c.changed_ms).where(c.active.is_(True), c.shift_start_ms <= now_ms, c.shift_end_ms > now_ms)
    for col, value in (("staff_id", staff_id), ("patient_id", patient_id), ("ward_id", ward_id)):
        if value is not None:
            stmt = stmt.where(c[col] == value)
    return _frame(_engine(engine_or_repo), stmt.order_by(c.ward_id, c.staff_id, c.patient_id))


def shift_assignments(engine_or_repo, ward_id: str, shift_start: datetime) -> pd.DataFrame:
    """Active assignments of one ward shift (for the care-team board)."""
    c = care_assignments.c
    stmt = select(c.staff_id, c.patient_id, c.ward_id, c.staff_role, c.shift_start_ms, c.shift_end_ms, c.source,
                  c.changed_by, c.changed_ms).where(c.active.is_(True), c.ward_id == ward_id,
                                                    c.shift_start_ms == to_ms(shift_start))
    return _frame(_engine(engine_or_repo), stmt)


def my_patients(engine_or_repo, site, staff_id: str, now: datetime) -> pd.DataFrame:
    """The clinician's patients now, in bed order: patient_id, bed_id, ward_id, name, shift_start, shift_end, source."""
    live = live_assignments(engine_or_repo, now, staff_id=staff_id).drop_duplicates("patient_id")
    pats = site.patients[["patient_id", "bed_id", "ward_id", "given", "family"]]
    order = site.beds[["bed_id"]].reset_index(drop=True).reset_index(names="_o")
    out = live.drop(columns=["ward_id"]).merge(pats, on="patient_id", how="left").merge(order, on="bed_id", how="left")
    out = out.assign(name=out["given"].fillna("") + " " + out["family"].fillna(""))
    return out.sort_values(["_o", "patient_id"], kind="stable")[
        ["patient_id", "bed_id", "ward_id", "name", "shift_start", "shift_end", "source"]].reset_index(drop=True)


def board(engine_or_repo, site, ward_id: str, shift_start: datetime) -> pd.DataFrame:
    """One row per occupied bed of the ward: bed_id, patient_id, name, nurse (staff ids, comma-separated),
    doctors (comma-separated) for the shift starting `shift_start`."""
    rows = shift_assignments(engine_or_repo, ward_id, shift_start)
    beds = _beds_in_order(site, ward_id)
    names = site.patients.set_index("patient_id")
    joined = (rows.groupby(["patient_id", rows["staff_role"].isin(DOCTOR_ROLES).map({True: "doctors", False: "nurse"})])
              ["staff_id"].agg(lambda s: ", ".join(sorted(s))).unstack() if len(rows) else pd.DataFrame())
    out = beds.assign(name=beds["patient_id"].map(names["given"] + " " + names["family"]))
    for col in ("nurse", "doctors"):
        out[col] = out["patient_id"].map(joined[col]) if col in joined else pd.NA
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- changing (audited)

def _check_editor(by_role: str) -> None:
    if str(by_role) not in EDIT_ROLES:
        raise AccessDenied(f"role {by_role!r} may not change the care team (charge nurse or manager only)")


def _audit(conn: Connection, now: datetime, by: str, by_role: str, action: str, staff_id: str, patient_id: str,
           start_ms: int, reason: str | None) -> None:
    audit.append(conn, ts=now, actor=by, role=by_role, action=action, object_type="care_assignment",
                 object_id=f"{staff_id}:{patient_id}@{start_ms}", patient_id=patient_id, reason=reason,
                 detail={"staff_id": staff_id, "shift_start_ms": start_ms})


def assign(engine_or_repo, site, *, staff_id: str, patient_id: str, ward_id: str, shift_start: datetime,
           shift_end: datetime, by: str, by_role: str, now: datetime, reason: str | None = None) -> bool:
    """Assign a nurse or doctor to a patient for one ward shift (audited). Returns False when the
    assignment already stood."""
    _check_editor(by_role)
    staff = site.entities.set_index("entity_id")
    if staff_id not in staff.index or staff.at[staff_id, "subtype"] not in NURSING_ROLES + DOCTOR_ROLES:
        raise InvalidInput(f"{staff_id!r} is not a nurse or doctor of this site")
    if patient_id not in set(site.patients["patient_id"]):
        raise InvalidInput(f"no patient {patient_id!r} on this site")
    if utc(shift_end) <= utc(shift_start):
        raise InvalidInput("a shift must end after it starts")
    c, start_ms, now_ms = care_assignments.c, to_ms(shift_start), to_ms(now)
    key = and_(c.shift_start_ms == start_ms, c.staff_id == staff_id, c.patient_id == patient_id)
    try:
        with _engine(engine_or_repo).begin() as conn:
            row = conn.execute(select(c.id, c.active).where(key)).first()
            if row is not None and row.active:
                return False
            if row is None:
                conn.execute(insert(care_assignments).values(
                    ward_id=ward_id, shift_start_ms=start_ms, shift_end_ms=to_ms(shift_end), staff_id=staff_id,
                    staff_role=str(staff.at[staff_id, "subtype"]), patient_id=patient_id, source="manual", active=True,
                    changed_by=by, changed_ms=now_ms))
            else:
                conn.execute(update(care_assignments).where(key).values(active=True, source="manual", changed_by=by,
                                                                          changed_ms=now_ms))
            _audit(conn, now, by, by_role, "care_assignment_added", staff_id, patient_id, start_ms, reason)
    except IntegrityError as exc:      # a concurrent editor added the same row first
        raise InvalidInput(f"{staff_id} is already assigned to {patient_id} on this shift") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot change care assignment: {exc}") from exc
    return True


def unassign(engine_or_repo, *, staff_id: str, patient_id: str, shift_start: datetime, by: str, by_role: str,
             now: datetime, reason: str | None = None) -> bool:
    """End an assignment for one shift (audited; the row stays, inactive). False when there was none."""
    _check_editor(by_role)
    c, start_ms = care_assignments.c, to_ms(shift_start)
    key = and_(c.shift_start_ms == start_ms, c.staff_id == staff_id, c.patient_id == patient_id, c.active.is_(True))
    try:
        with _engine(engine_or_repo).begin() as conn:
            done = conn.execute(update(care_assignments).where(key).values(active=False, changed_by=by,
                                                                           changed_ms=to_ms(now))).rowcount
            if done:
                _audit(conn, now, by, by_role, "care_assignment_removed", staff_id, patient_id, start_ms, reason)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot change care assignment: {exc}") from exc
    return bool(done)


def set_nurse(engine_or_repo, site, *, ward_id: str, shift_start: datetime, shift_end: datetime, patient_id: str,
              nurse_id: str, by: str, by_role: str, now: datetime, reason: str | None = None) -> bool:
    """Make `nurse_id` the patient's only nurse on this shift (audited per change). False: no change."""
    current = shift_assignments(engine_or_repo, ward_id, shift_start)
    others = current[(current["patient_id"] == patient_id) & current["staff_role"].isin(NURSING_ROLES)
                     & (current["staff_id"] != nurse_id)]["staff_id"].tolist()
    changed = assign(engine_or_repo, site, staff_id=nurse_id, patient_id=patient_id, ward_id=ward_id,
                     shift_start=shift_start, shift_end=shift_end, by=by, by_role=by_role, now=now, reason=reason)
    for other in others:
        changed |= unassign(engine_or_repo, staff_id=other, patient_id=patient_id, shift_start=shift_start, by=by,
                            by_role=by_role, now=now, reason=reason)
    return changed


def history(engine_or_repo, ward_id: str, since: datetime) -> pd.DataFrame:
    """Assignments of the ward changed since `since` (manual changes and seeds), newest first."""
    c = care_assignments.c
    stmt = (select(c.staff_id, c.patient_id, c.ward_id, c.staff_role, c.shift_start_ms, c.shift_end_ms, c.source,
                   c.changed_by, c.changed_ms, c.active)
            .where(c.ward_id == ward_id, c.changed_ms >= to_ms(since)).order_by(c.changed_ms.desc()).limit(500))
    engine = _engine(engine_or_repo)
    try:
        with engine.connect() as conn:
            res = conn.execute(stmt)
            df = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read care assignments: {exc}") from exc
    for col in ("shift_start_ms", "shift_end_ms", "changed_ms"):
        df[col.removesuffix("_ms").replace("changed", "changed_at")] = pd.to_datetime(df.pop(col), unit="ms", utc=True)
    return df


def shift_label(start: datetime, end: datetime, tz) -> str:
    s, e = pd.Timestamp(start).tz_convert(tz), pd.Timestamp(end).tz_convert(tz)
    return f"{s:%a %d %b %H:%M}–{e:%H:%M}"


__all__ = ["care_assignments", "ward_shifts", "default_assignments", "seed_shift", "ensure_seeded", "live_assignments",
           "shift_assignments", "shift_staff", "my_patients", "board", "assign", "unassign", "set_nurse", "history", "shift_label",
           "EDIT_ROLES", "NURSING_ROLES", "DOCTOR_ROLES"]
