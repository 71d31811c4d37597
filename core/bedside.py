"""Bedside context: who is at which bed (sessions from positions or bed-antenna reads), whether they
may see the patient's record (care context), and what the bedside screen shows (BedsideView).

Session rules [E] (engineering choices, not from a standard):
- a clinician is *at* a bed when a sample lies inside the bed polygon grown by `margin_m`, or a bed
  antenna read them; overlapping margins go to the nearest bed;
- a session opens after `dwell_s` of presence at one bed — reads there with no gap reaching `exit_s`
  (start = first read there) — provided that bed holds most of the clinician's at-bed reads of the
  last `dwell_s` (more than OPEN_SHARE): in a bay, where a clinician stands between two beds and
  position noise puts some reads at the neighbour, the neighbour never wins on a few stray reads;
- switching to another bed while a session is open needs `dwell_s` there without a single read at
  the current bed in between, so a clinician standing on the border of two beds does not flap;
- a session closes once the clinician has not been seen at that bed for `exit_s` (end = last sample
  there), or when a session at another bed opens — so sessions of one clinician never overlap, and
  dropouts or stray reads shorter than `exit_s` do not split them (no flapping).
Samples away from any bed carry no extra information for these rules and are dropped up front;
positions are matched to beds with one STRtree query, samples are compressed into runs with numpy,
and the small state machine walks runs (visits), not samples."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from core.errors import InvalidInput
from core.fhir.codes import FALL_RISK_CODES
from core.fhir.model import PatientRecord, Result
from core.models import utc

OPEN_SHARE = 0.5          # [E] more than half of the at-bed reads over the dwell time
SESSION_COLUMNS = ["staff_id", "patient_id", "bed_id", "start", "end", "duration_s", "open"]
_NS = 1_000_000_000
END_OF_TIME = datetime(2200, 1, 1, tzinfo=timezone.utc)   # "history is complete": closes every session


# ---------------------------------------------------------------- samples → beds

def bed_tree(beds: pd.DataFrame, margin_m: float) -> STRtree:
    """STRtree of the margin-grown bed polygons (build once, query every tick)."""
    return STRtree(shapely.buffer(np.asarray(beds["geometry"], dtype=object), margin_m))


def assign_beds(samples: pd.DataFrame, beds: pd.DataFrame, margin_m: float = 0.5, tree: STRtree | None = None) -> pd.Series:
    """Bed id per sample: an antenna's `bed_id` when present, else the (margin-grown) bed polygon
    containing (x_m, y_m) on the same floor, nearest bed on overlap; missing when at no bed.
    `tree`: a prebuilt `bed_tree(beds, margin_m)`."""
    out = pd.Series(pd.NA, index=samples.index, dtype="str")
    if "bed_id" in samples:
        given = samples["bed_id"].astype("str")
        out = given.where(samples["bed_id"].notna() & (given != ""), pd.NA)
    if not {"x_m", "y_m"} <= set(samples) or beds is None or beds.empty:
        return out
    need = np.flatnonzero((out.isna() & samples["x_m"].notna() & samples["y_m"].notna()).to_numpy())
    if need.size == 0:
        return out
    pts = shapely.points(samples["x_m"].to_numpy(float)[need], samples["y_m"].to_numpy(float)[need])
    geoms = np.asarray(beds["geometry"], dtype=object)
    p_idx, b_idx = (tree or bed_tree(beds, margin_m)).query(pts, predicate="intersects")
    if "floor_id" in samples and "floor_id" in beds:
        same = samples["floor_id"].to_numpy(object)[need][p_idx] == beds["floor_id"].to_numpy(object)[b_idx]
        p_idx, b_idx = p_idx[same], b_idx[same]
    dist = shapely.distance(pts[p_idx], geoms[b_idx])
    order = np.lexsort((dist, p_idx))                   # per point, nearest bed first
    p_idx, b_idx = p_idx[order], b_idx[order]
    first = np.unique(p_idx, return_index=True)[1]
    bed_ids = beds["bed_id"].astype("str").to_numpy()
    out.iloc[need[p_idx[first]]] = bed_ids[b_idx[first]]
    return out


def _ns(ts: pd.Series) -> np.ndarray:
    return pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]").astype("int64").to_numpy()


def _runs(staff: np.ndarray, bed: np.ndarray, t_ns: np.ndarray, exit_ns: int) -> pd.DataFrame:
    """Consecutive samples of one clinician at one bed, split where a gap reaches `exit_ns`."""
    if len(t_ns) == 0:
        return pd.DataFrame({"staff_id": [], "bed_id": [], "first_ns": np.zeros(0, "int64"),
                             "last_ns": np.zeros(0, "int64"), "n": np.zeros(0, "int64")})
    order = np.lexsort((t_ns, staff))
    staff, bed, t_ns = staff[order], bed[order], t_ns[order]
    new = np.ones(len(t_ns), dtype=bool)
    new[1:] = (staff[1:] != staff[:-1]) | (bed[1:] != bed[:-1]) | (np.diff(t_ns) >= exit_ns)
    rid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(t_ns)] - 1
    return pd.DataFrame({"staff_id": staff[starts], "bed_id": bed[starts], "first_ns": t_ns[starts],
                         "last_ns": t_ns[ends], "n": np.bincount(rid)})


# ---------------------------------------------------------------- sessions

@dataclass(frozen=True)
class Session:
    staff_id: str
    bed_id: str
    patient_id: str | None
    start: datetime
    end: datetime | None            # None while open

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(int(ns) // 1000 / 1e6, tz=timezone.utc)   # datetimes hold microseconds


@dataclass
class _Track:
    """Per-clinician state: the open session (bed, start, last seen), candidate visits per bed
    ([first, last seen]) and the recent at-bed runs (time, bed, reads) for the majority rule."""
    bed: str | None = None
    start_ns: int = 0
    last_ns: int = 0
    cands: dict = field(default_factory=dict)
    patient_id: str | None = None
    seen_ns: int = -(2 ** 62)
    recent: list = field(default_factory=list)

    def share(self, bed: str, now_ns: int, window_ns: int) -> float:
        """Fraction of the at-bed reads of the last `window_ns` that were at `bed`."""
        self.recent = [r for r in self.recent if r[0] >= now_ns - window_ns]
        total = sum(r[2] for r in self.recent)
        return sum(r[2] for r in self.recent if r[1] == bed) / max(total, 1)

    def close(self, staff: str, closed: list, until_ns: int | None = None) -> None:
        """End the open session at its last read — or, when a session elsewhere takes over, no later
        than that one's start, so one clinician's sessions never overlap."""
        if self.bed is not None:
            end = self.last_ns if until_ns is None else max(self.start_ns, min(self.last_ns, until_ns))
            closed.append(Session(staff, self.bed, self.patient_id, _dt(self.start_ns), _dt(end)))
        self.bed = None

    def feed(self, staff: str, bed: str, first: int, last: int, n: int, dwell_ns: int, exit_ns: int,
             patients: Mapping, opened: list, closed: list) -> None:
        self.seen_ns = max(self.seen_ns, last)
        self.recent.append((last, bed, n))
        if self.bed is not None and first - self.last_ns >= exit_ns:
            self.close(staff, closed)
        if bed == self.bed:
            self.last_ns = last
            self.cands.clear()          # still here: a move elsewhere must show dwell_s without this bed
            return
        cand = self.cands.get(bed)
        if cand is not None and first - cand[1] < exit_ns:
            cand[1] = last                              # same visit: a noisy read elsewhere or a batch edge
        else:
            cand = self.cands[bed] = [first, last]
        if cand[1] - cand[0] >= dwell_ns and self.share(bed, last, dwell_ns) > OPEN_SHARE:
            self.close(staff, closed, until_ns=cand[0])
            self.bed, self.start_ns, self.last_ns = bed, cand[0], cand[1]
            self.patient_id = patients.get(bed)
            self.cands.clear()
            opened.append(Session(staff, bed, self.patient_id, _dt(self.start_ns), None))

    def expire(self, staff: str, now_ns: int, exit_ns: int, closed: list) -> None:
        if self.bed is not None and now_ns - self.last_ns >= exit_ns:
            self.close(staff, closed)


class BedsideTracker:
    """Incremental bedside sessions: feed sample batches in time order, get (opened, closed)."""

    def __init__(self, beds: pd.DataFrame | None, patients_by_bed: Mapping[str, str] | None = None,
                 dwell_s: float = 5.0, exit_s: float = 8.0, margin_m: float = 0.5):
        if dwell_s < 0 or exit_s <= 0:
            raise InvalidInput(f"dwell_s must be >= 0 and exit_s > 0 (got {dwell_s}, {exit_s})")
        self.beds, self.margin_m = beds, margin_m
        self.patients_by_bed = dict(patients_by_bed or {})
        self.dwell_ns, self.exit_ns = int(dwell_s * _NS), int(exit_s * _NS)
        self.tracks: dict[str, _Track] = {}
        self.tree = bed_tree(beds, margin_m) if beds is not None and len(beds) else None
        self.late_samples = 0       # samples older than what a clinician's track already consumed

    def _runs(self, samples: pd.DataFrame) -> pd.DataFrame:
        missing = {"ts", "staff_id"} - set(samples)
        if missing:
            raise InvalidInput(f"bedside samples lack columns {sorted(missing)}")
        bed = assign_beds(samples, self.beds, self.margin_m, self.tree)
        at = bed.notna().to_numpy()
        t_ns = _ns(samples["ts"])[at]
        staff = samples["staff_id"].astype("str").to_numpy()[at]
        known = pd.Index(list(self.tracks))
        seen = np.array([t.seen_ns for t in self.tracks.values()], dtype="int64")
        idx = known.get_indexer(staff)
        fresh = t_ns > np.where(idx >= 0, seen[np.maximum(idx, 0)] if seen.size else 0, -(2 ** 62))
        self.late_samples += int((~fresh).sum())
        return _runs(staff[fresh], bed.to_numpy()[at][fresh], t_ns[fresh], self.exit_ns)

    def update(self, samples: pd.DataFrame, now: datetime) -> tuple[list[Session], list[Session]]:
        now_ns = int(pd.Timestamp(utc(now)).value)
        opened: list[Session] = []
        closed: list[Session] = []
        for r in self._runs(samples).itertuples(index=False):   # one row per visit run, not per sample
            track = self.tracks.setdefault(r.staff_id, _Track())
            track.feed(r.staff_id, r.bed_id, r.first_ns, r.last_ns, r.n, self.dwell_ns, self.exit_ns,
                       self.patients_by_bed, opened, closed)
        for staff, track in self.tracks.items():
            track.expire(staff, now_ns, self.exit_ns, closed)
        return opened, closed

    def current(self, staff_id: str) -> Session | None:
        """The open session of `staff_id` (bed and patient they are at now), or None."""
        t = self.tracks.get(staff_id)
        if t is None or t.bed is None:
            return None
        return Session(staff_id, t.bed, t.patient_id, _dt(t.start_ns), None)

    def open_sessions(self) -> list[Session]:
        return [s for s in (self.current(k) for k in self.tracks) if s is not None]


def bedside_sessions(samples: pd.DataFrame, beds_df: pd.DataFrame | None, patients_by_bed: Mapping[str, str],
                     dwell_s: float = 5.0, exit_s: float = 8.0, margin_m: float = 0.5,
                     now: datetime | None = None) -> pd.DataFrame:
    """Sessions over a history of samples (ts, staff_id, bed_id and/or x_m, y_m [, floor_id]).
    With `now`, sessions still within `exit_s` of their last sample stay open (end NaT, open True);
    without it the history is taken as complete and every session is closed at its last sample."""
    tracker = BedsideTracker(beds_df, patients_by_bed, dwell_s, exit_s, margin_m)
    ordered = samples.sort_values("ts", kind="stable") if len(samples) else samples
    horizon = now if now is not None else END_OF_TIME
    opened, closed = tracker.update(ordered, horizon) if len(samples) else ([], [])
    rows = [(s.staff_id, s.patient_id, s.bed_id, s.start, s.end, False) for s in closed]
    rows += [(s.staff_id, s.patient_id, s.bed_id, s.start, None, True) for s in tracker.open_sessions()]
    frame = pd.DataFrame(rows, columns=["staff_id", "patient_id", "bed_id", "start", "end", "open"])
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    frame["duration_s"] = (frame["end"] - frame["start"]).dt.total_seconds()
    return frame.sort_values(["staff_id", "start"], kind="stable").reset_index(drop=True)[SESSION_COLUMNS]


# ---------------------------------------------------------------- care context (access)

@dataclass(frozen=True)
class CareDecision:
    """Whether `staff_id` may see `patient_id`'s record now. Callers record the reason and audit row
    (HIPAA minimum necessary / emergency access, standards.md 6.2–6.3)."""
    staff_id: str
    patient_id: str
    access: str                       # "full" | "location_only"
    in_care: bool
    break_glass_required: bool
    reason: str
    expires: datetime | None = None   # end of the shift or of the break-glass grant


def _active_rows(rows, now: datetime, start_col: str, end_col: str, staff_id: str, patient_id: str) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows or []))
    if frame.empty:
        return frame
    missing = {"staff_id", "patient_id", end_col} - set(frame)
    if missing:
        raise InvalidInput(f"care rows lack columns {sorted(missing)}")
    start = pd.to_datetime(frame[start_col], utc=True) if start_col in frame else None
    end = pd.to_datetime(frame[end_col], utc=True)
    ts = pd.Timestamp(utc(now))
    live = (frame["staff_id"].astype("str") == staff_id) & (frame["patient_id"].astype("str") == patient_id) & (end > ts)
    if start is not None:
        live &= start <= ts
    return frame.assign(_end=end)[live.to_numpy()]


def care_context(staff_id: str, patient_id: str, assignments, now: datetime, grants=None) -> CareDecision:
    """`assignments`: rows (DataFrame or dicts) staff_id, patient_id, shift_start, shift_end. Assigned
    this shift → full access. Otherwise location only, and break-glass is required to see more —
    unless `grants` (staff_id, patient_id, expires_at) holds a live break-glass grant (time-limited,
    EHR-S FM TI.1.3.1, standards.md 6.3)."""
    shift = _active_rows(assignments, now, "shift_start", "shift_end", staff_id, patient_id)
    if len(shift):
        return CareDecision(staff_id, patient_id, "full", True, False, "assigned this shift",
                            shift["_end"].max().to_pydatetime())
    grant = _active_rows(grants, now, "granted_at", "expires_at", staff_id, patient_id)
    if len(grant):
        return CareDecision(staff_id, patient_id, "full", False, False, "break-glass grant active",
                            grant["_end"].max().to_pydatetime())
    return CareDecision(staff_id, patient_id, "location_only", False, True,
                        "not assigned to this patient this shift: break-glass with a reason required")


# ---------------------------------------------------------------- bedside view

VITAL_NAMES = ("resp_rate_per_min", "spo2_pct", "inspired_o2_pct", "sbp_mmhg", "dbp_mmhg", "pulse_per_min",
               "temp_c", "consciousness", "glucose_mmol_l")
NEWS2_RESPONSE = [  # (minimum total, band, response) — RCP NEWS2 Charts 3/4, standards.md 1.2
    (7, "high", "urgent or emergency response"),
    (5, "medium", "key threshold for urgent response"),
]
# Observation intervals in minutes per band: openeobs frequencies [720, 240, 60, 30] (standards.md
# 1.3), matching RCP Chart 4 (12 h, 4–6 h → stricter 4 h, 1 h); ≥7 is continuous monitoring in RCP.
OBS_INTERVAL_MIN = {"none": 720, "low": 240, "low_medium": 60, "medium": 60, "high": 30}


@dataclass(frozen=True)
class VitalReading:
    name: str
    ts: datetime
    value: float | None
    unit: str | None
    value_text: str | None = None


@dataclass(frozen=True)
class DueDose:
    medication: str
    request_id: str | None
    due: datetime
    status: str                  # "overdue" | "due"
    dosage_text: str | None = None


@dataclass(frozen=True)
class Reminder:
    kind: str                    # news2 | news2_rising | obs_overdue | fall_risk | allergy
    severity: str                # info | warn | urgent
    text: str


@dataclass(frozen=True)
class BedsideView:
    patient_id: str
    name: str
    age_years: int | None
    sex: str | None
    mrn: str
    bed_id: str | None
    allergies: tuple                 # active, high criticality first
    problems: tuple                  # active conditions, newest first
    latest_vitals: tuple[VitalReading, ...]
    news2: int | None
    news2_history: tuple[tuple[datetime, int], ...]
    results_new: tuple[Result, ...]  # available and issued since the last visit
    results_pending: tuple           # registered/partial reports and unanswered orders
    meds_due: tuple[DueDose, ...]    # overdue first, then due within the window
    reminders: tuple[Reminder, ...]
    nursing_tasks: tuple[str, ...] = ()
    variant: str = "nurse"
    since: datetime | None = None

    @property
    def high_risk_allergy(self) -> bool:
        return any(a.high_risk for a in self.allergies)


def news2_band(total: int, red: bool) -> str:
    """standards.md 1.2 rule-engine suggestion: high ≥7, medium ≥5, low_medium on any single 3, else low."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low_medium" if red else ("low" if total > 0 else "none")


def _news2_frame(news2, vitals: pd.DataFrame) -> pd.DataFrame:
    frame = news2(vitals) if callable(news2) else news2
    if frame is None:
        return pd.DataFrame({"ts": pd.to_datetime([], utc=True), "total": pd.Series([], dtype="int64")})
    frame = pd.DataFrame(frame)
    if not {"ts", "total"} <= set(frame):
        raise InvalidInput("NEWS2 scores need columns ts and total")
    return frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).sort_values("ts", kind="stable")


def _latest_vitals(vitals: pd.DataFrame) -> tuple[VitalReading, ...]:
    v = vitals[vitals["name"].isin(VITAL_NAMES)]
    last = v.sort_values("ts", kind="stable").groupby("name", sort=False).tail(1)
    order = {n: i for i, n in enumerate(VITAL_NAMES)}
    last = last.assign(_o=last["name"].map(order)).sort_values("_o")
    return tuple(VitalReading(r.name, r.ts.to_pydatetime(), None if pd.isna(r.value) else float(r.value),
                              None if pd.isna(r.unit) else r.unit, None if pd.isna(r.value_text) else r.value_text)
                 for r in last.itertuples(index=False))


def _doses(record: PatientRecord, now: datetime, window: timedelta, grace: timedelta, lookback: timedelta) -> list[DueDose]:
    """Scheduled doses in [now - lookback, now + window] not yet given. A given dose covers the slot
    from its due time (minus `grace`, i.e. given a little early) to the next due time (minus grace)."""
    out = []
    given = [a for a in record.administrations if a.status in ("completed", "in-progress") and a.effective]
    for med in record.medications:
        due = pd.to_datetime(list(med.due_between(now - lookback, now + window)), utc=True)
        if len(due) == 0:
            continue
        mine = pd.to_datetime([a.effective for a in given if a.request_id == med.id
                               or (a.request_id is None and a.code and a.code == med.code)], utc=True)
        slot = np.searchsorted((due - grace).asi8, mine.asi8, side="right") - 1
        covered = np.zeros(len(due), dtype=bool)
        covered[slot[slot >= 0]] = True
        ts = pd.Timestamp(now)
        for t, done in zip(due, covered):
            if not done:
                status = "overdue" if t < ts - grace else "due"
                out.append(DueDose(med.display, med.id, t.to_pydatetime(), status, med.dosage_text))
    return sorted(out, key=lambda d: (d.status != "overdue", d.due))


def dose_label(due: datetime, status: str, today) -> str:
    """How a dose's time reads on screen, never ambiguous when yesterday's missed 11:10 and today's
    11:10 are both listed: "missed yesterday 11:10" / "missed Mon 11:10" for an overdue dose of an
    earlier day, "OVERDUE 11:10" today, "due 11:10" / "due tomorrow 11:10" ahead. `due` is already in
    the wall-clock zone the reader uses; `today` is that zone's date now."""
    days = (due.date() - today).days
    day = {0: "", -1: "yesterday ", 1: "tomorrow "}.get(days, f"{due:%a} ")
    if status == "overdue":
        return f"OVERDUE {due:%H:%M}" if days == 0 else f"missed {day}{due:%H:%M}"
    return f"due {day}{due:%H:%M}"


def _pending(record: PatientRecord) -> tuple:
    answered = {sr for r in record.results if r.available for sr in r.based_on}
    waiting = tuple(r for r in record.results if r.status in ("registered", "partial"))
    return waiting + tuple(o for o in record.pending_orders if o.id not in answered)


def _obs_reminders(vitals: pd.DataFrame, news: pd.DataFrame, now: datetime) -> list[Reminder]:
    out = []
    taken = vitals.loc[vitals["name"].isin(VITAL_NAMES), "ts"]
    if news.empty:
        band, total = "none", None
    else:
        last = news.iloc[-1]
        total = int(last["total"])
        band = news2_band(total, bool(last.get("red", False)))
    for minimum, name, response in NEWS2_RESPONSE:
        if total is not None and total >= minimum:
            out.append(Reminder("news2", "urgent", f"NEWS2 {total} ({name}): {response}"))
            break
    else:
        if band == "low_medium":
            out.append(Reminder("news2", "warn", f"NEWS2 {total} with a single-parameter red score: urgent ward-based response"))
    if len(news) > 1:
        recent = news[news["ts"] >= pd.Timestamp(now) - pd.Timedelta(hours=24)]
        low = int(recent["total"].min()) if len(recent) else total
        if total is not None and total - low >= 2:
            out.append(Reminder("news2_rising", "urgent" if band in ("medium", "high") else "warn",
                                f"NEWS2 rising: {low} → {total} in 24 h"))
    interval = pd.Timedelta(minutes=OBS_INTERVAL_MIN[band])
    if taken.empty:
        out.append(Reminder("obs_overdue", "warn", "No observations recorded"))
    elif taken.max() + interval < pd.Timestamp(now):
        late_min = int((pd.Timestamp(now) - taken.max() - interval).total_seconds() // 60)
        out.append(Reminder("obs_overdue", "urgent" if band in ("medium", "high") else "warn",
                            f"Observations overdue by {late_min} min (every {OBS_INTERVAL_MIN[band]} min at this NEWS2)"))
    return out


def _is_fall_risk(record: PatientRecord) -> bool:
    return any(f.code in FALL_RISK_CODES or "fall" in (f.display or "").lower() for f in record.flags)


def _dose_task(d: DueDose, today) -> str:
    when = dose_label(d.due, d.status, today)
    if d.status != "overdue":
        return f"Give {d.medication} ({when})"
    return f"OVERDUE: give {d.medication} ({when if when.startswith('missed') else f'due {d.due:%H:%M}'})"


def _nursing_tasks(view_meds: list[DueDose], reminders: list[Reminder], pending: tuple, fall: bool,
                   now: datetime) -> tuple[str, ...]:
    # core has no site time zone: task times are UTC wall-clock (the pages label doses in local time)
    tasks = [_dose_task(d, utc(now).date()) for d in view_meds]
    tasks += ["Record a full set of observations" for r in reminders if r.kind == "obs_overdue"]
    if fall:
        tasks.append("Falls precautions: bed low, brakes on, call bell and walking aid within reach")
    tasks += [f"Chase pending: {p.display}" for p in pending if getattr(p, "priority", None) in ("urgent", "stat", "asap")]
    return tuple(tasks)


def build_bedside_view(record: PatientRecord, now: datetime, last_visit: datetime | None = None,
                       news2: pd.DataFrame | Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                       variant: str = "nurse", bed_id: str | None = None, due_window_h: float = 2.0,
                       overdue_grace_min: float = 30.0, lookback_h: float = 24.0) -> BedsideView:
    """The bedside essentials for `record` at `now`. `news2` is a frame (ts, total[, red]) or a callable
    scoring the tidy vitals frame (e.g. core.alarms.vitals' scorer, injected by the caller).
    Results are "new" when issued after `last_visit` (or in the last 24 h when there was none).
    The 30-min overdue grace and 2-h due window are ward-policy defaults [E]."""
    if variant not in ("nurse", "doctor"):
        raise InvalidInput(f"variant must be 'nurse' or 'doctor', not {variant!r}")
    now = utc(now)
    vitals = record.vitals_frame()
    news = _news2_frame(news2, vitals)
    since = utc(last_visit) if last_visit is not None else now - timedelta(hours=24)
    new_results = tuple(r for r in record.results if r.available and r.issued and since < r.issued <= now)
    pending = _pending(record)
    doses = _doses(record, now, timedelta(hours=due_window_h), timedelta(minutes=overdue_grace_min),
                   timedelta(hours=lookback_h))
    reminders = _obs_reminders(vitals, news, now)
    fall = _is_fall_risk(record)
    if fall:
        reminders.append(Reminder("fall_risk", "warn", "Fall risk"))
    allergies = tuple(sorted(record.allergies, key=lambda a: (not a.high_risk, a.display)))
    reminders += [Reminder("allergy", "urgent", f"High-criticality allergy: {a.display}") for a in allergies if a.high_risk]
    return BedsideView(
        patient_id=record.id, name=record.name, age_years=record.age(now), sex=record.sex, mrn=record.mrn,
        bed_id=bed_id or record.bed_id(), allergies=allergies,
        problems=tuple(sorted(record.conditions, key=lambda c: c.onset or datetime.min.replace(tzinfo=now.tzinfo), reverse=True)),
        latest_vitals=_latest_vitals(vitals), news2=int(news["total"].iloc[-1]) if len(news) else None,
        news2_history=tuple((t.to_pydatetime(), int(s)) for t, s in zip(news["ts"], news["total"])),
        results_new=new_results, results_pending=pending, meds_due=tuple(doses), reminders=tuple(reminders),
        nursing_tasks=_nursing_tasks(doses, reminders, pending, fall, now) if variant == "nurse" else (),
        variant=variant, since=since)


# ---------------------------------------------------------------- NEWS2 from FHIR vitals, schedule

# tidy vital name (core.fhir.codes.VITALS) → core.alarms.vitals.news2_frame input column
NEWS2_INPUTS = {"resp_rate_per_min": "resp_rate", "spo2_pct": "spo2", "sbp_mmhg": "systolic_bp",
                "pulse_per_min": "pulse", "temp_c": "temp_c"}
ROOM_AIR_O2_PCT = 21.0     # FiO2 of room air; an inspired O2 above it means supplemental oxygen (NEWS2 "oxygen")


def news2_from_vitals(vitals: pd.DataFrame) -> pd.DataFrame:
    """Score each observation set (rows sharing a timestamp) of a tidy FHIR vitals frame with
    `core.alarms.vitals.news2_frame`. A set without an inspired-O2 reading counts as on air [E]
    (the sample charts record O2 only while it is given). Returns ts, total, red for scored sets."""
    from core.alarms.vitals import news2_frame
    v = vitals[vitals["name"].isin(list(NEWS2_INPUTS) + ["consciousness", "inspired_o2_pct"])]
    if v.empty:
        return pd.DataFrame({"ts": pd.to_datetime([], utc=True), "total": pd.Series([], dtype="int64"),
                             "red": pd.Series([], dtype="bool")})
    num = v.pivot_table(index="ts", columns="name", values="value", aggfunc="last")
    text = v[v["name"] == "consciousness"].drop_duplicates("ts", keep="last").set_index("ts")["value_text"]
    wide = num.rename(columns=NEWS2_INPUTS).reindex(columns=list(NEWS2_INPUTS.values()))
    wide["consciousness"] = text.reindex(wide.index)
    o2 = num["inspired_o2_pct"] if "inspired_o2_pct" in num else pd.Series(np.nan, index=num.index)
    wide["on_oxygen"] = (o2 > ROOM_AIR_O2_PCT).astype(object)
    scored = news2_frame(wide.reset_index(drop=True))
    ok = (scored["status"] == "scored").to_numpy()
    return pd.DataFrame({"ts": wide.index[ok], "total": scored["total"].to_numpy()[ok].astype("int64"),
                         "red": scored["red_score"].to_numpy()[ok].astype(bool)}).reset_index(drop=True)


SCHEDULE_COLUMNS = ["due", "patient_id", "bed_id", "name", "kind", "what", "status"]


def schedule(view: BedsideView, record: PatientRecord, now: datetime, horizon_h: float = 12.0) -> pd.DataFrame:
    """One patient's schedule for the workstation: doses due within `horizon_h` or overdue, the next
    observation set (from the NEWS2 band's interval) and pending results (no due time)."""
    now = utc(now)
    doses = _doses(record, now, timedelta(hours=horizon_h), timedelta(minutes=30), timedelta(hours=24))
    rows = [(d.due, "medication", f"{d.medication}" + (f" — {d.dosage_text}" if d.dosage_text else ""), d.status)
            for d in doses]
    taken = [r.ts for r in view.latest_vitals]
    if taken:
        band = "none"
        if view.news2_history:
            band = news2_band(view.news2, False)
        due = max(taken) + timedelta(minutes=OBS_INTERVAL_MIN[band])
        rows.append((due, "observations", f"Full set of observations (every {OBS_INTERVAL_MIN[band]} min)",
                     "overdue" if due < now else "due"))
    rows += [(None, "result", f"Pending: {p.display}", "pending") for p in view.results_pending]
    frame = pd.DataFrame(rows, columns=["due", "kind", "what", "status"])
    frame["due"] = pd.to_datetime(frame["due"], utc=True)
    return frame.assign(patient_id=view.patient_id, bed_id=view.bed_id, name=view.name)[SCHEDULE_COLUMNS]
