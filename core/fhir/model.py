"""Frozen records the FHIR importer produces: one `PatientRecord` per Patient, holding small
frozen items (Allergy, Medication, ...) that every page can show without knowing FHIR.

Times are tz-aware UTC datetimes; `birth_date` is a date. Anything needing "now" (age, doses due)
takes it as a parameter."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

# UCUM units-of-time (FHIR Timing.repeat.periodUnit) in seconds; mo/a are calendar averages, which
# is precise enough for schedules that repeat within hours/days.
UNIT_S = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "wk": 604800.0, "mo": 2629800.0, "a": 31557600.0}
OBSERVATION_COLUMNS = ["ts", "code", "name", "value", "unit", "value_text", "category"]


@dataclass(frozen=True)
class Allergy:
    display: str
    criticality: str | None          # low | high | unable-to-assess (FHIR R4, standards.md 5.5)
    category: tuple[str, ...]        # food | medication | environment | biologic
    code: str | None
    system: str | None
    clinical_status: str
    verification_status: str | None = None
    type: str | None = None
    reactions: tuple[str, ...] = ()
    recorded: datetime | None = None
    id: str | None = None

    @property
    def high_risk(self) -> bool:
        return self.criticality == "high"


@dataclass(frozen=True)
class DoseTiming:
    """FHIR Timing reduced to what a ward needs: explicit events or a repeat rule."""
    events: tuple[datetime, ...] = ()
    frequency: int | None = None
    period: float | None = None
    period_unit: str | None = None
    time_of_day: tuple[str, ...] = ()
    bounds_start: datetime | None = None
    bounds_end: datetime | None = None

    def interval_s(self) -> float | None:
        if not self.period or self.period_unit not in UNIT_S:
            return None
        return self.period * UNIT_S[self.period_unit] / max(self.frequency or 1, 1)

    def between(self, start: datetime, end: datetime, anchor: datetime | None) -> tuple[datetime, ...]:
        """Scheduled times in [start, end], vectorised with numpy (no loop over doses)."""
        lo = max(start, self.bounds_start) if self.bounds_start else start
        hi = min(end, self.bounds_end) if self.bounds_end else end
        if lo > hi:
            return ()
        times = [t for t in self.events if lo <= t <= hi]
        if self.time_of_day:
            times += _daily_times(self.time_of_day, lo, hi)
        elif not self.events:
            times += _repeat_times(self.interval_s(), self.bounds_start or anchor, lo, hi)
        return tuple(sorted(set(times)))


def _repeat_times(interval_s: float | None, anchor: datetime | None, lo: datetime, hi: datetime) -> list[datetime]:
    if not interval_s or anchor is None:
        return []
    k0 = max(0, int(np.ceil((lo - anchor).total_seconds() / interval_s)))
    k1 = int(np.floor((hi - anchor).total_seconds() / interval_s))
    if k1 < k0:
        return []
    offsets = np.arange(k0, k1 + 1) * interval_s
    return [anchor + timedelta(seconds=float(s)) for s in offsets]


def _daily_times(times_of_day: tuple[str, ...], lo: datetime, hi: datetime) -> list[datetime]:
    # timeOfDay is wall-clock time; the importer has no site time zone, so it is read as UTC.
    days = pd.date_range(lo.date(), hi.date(), freq="D").to_numpy()
    tods = pd.to_timedelta(list(times_of_day)).to_numpy()
    out = (days[:, None] + tods[None, :]).ravel()
    stamps = pd.DatetimeIndex(out).tz_localize("UTC")
    return [t.to_pydatetime() for t in stamps if lo <= t <= hi]


@dataclass(frozen=True)
class Medication:
    display: str
    status: str                      # active | on-hold | cancelled | completed | entered-in-error | stopped | draft
    code: str | None
    system: str | None = None
    intent: str | None = None
    authored: datetime | None = None
    dosage_text: str | None = None
    as_needed: bool = False
    timing: DoseTiming | None = None
    encounter_id: str | None = None
    reasons: tuple[str, ...] = ()
    id: str | None = None

    def due_between(self, start: datetime, end: datetime) -> tuple[datetime, ...]:
        """Scheduled dose times in [start, end]; PRN (as-needed) orders have none."""
        if self.as_needed or self.timing is None:
            return ()
        return self.timing.between(start, end, self.authored)


@dataclass(frozen=True)
class Condition:
    display: str
    code: str | None
    clinical_status: str             # active | recurrence | relapse | inactive | remission | resolved
    onset: datetime | None = None
    abatement: datetime | None = None
    recorded: datetime | None = None
    system: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class EncounterLocation:
    reference: str | None
    location_id: str | None          # resolved Location id (None when the Location is not in the import)
    display: str | None
    status: str | None               # planned | active | reserved | completed
    physical_type: str | None        # bd | ro | wa | ... (standards.md 5.5)
    identifier: str | None           # first identifier value, e.g. the site's bed id


@dataclass(frozen=True)
class Encounter:
    id: str | None
    status: str
    class_code: str | None           # IMP | EMER | AMB | ... (v3 ActCode)
    type_display: str | None
    start: datetime | None
    end: datetime | None
    locations: tuple[EncounterLocation, ...] = ()

    def bed(self) -> EncounterLocation | None:
        """The active bed location (standards.md 5.5: use the active `bd` location for patient ↔ bed)."""
        for loc in self.locations:
            if loc.physical_type == "bd" and loc.status in (None, "active"):
                return loc
        return None


@dataclass(frozen=True)
class Observation:
    ts: datetime
    code: str
    name: str                        # canonical vital name (e.g. resp_rate_per_min) or the display
    value: float | None
    unit: str | None
    value_text: str | None = None    # coded / string values, e.g. ACVPU "A"
    category: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Result:
    """A DiagnosticReport: available when final/amended/corrected/preliminary, pending when registered/partial."""
    display: str
    status: str
    code: str | None
    issued: datetime | None
    effective: datetime | None = None
    category: str | None = None
    conclusion: str | None = None
    based_on: tuple[str, ...] = ()   # ServiceRequest ids this report answers
    id: str | None = None

    @property
    def available(self) -> bool:
        return self.status in ("final", "amended", "corrected", "appended", "preliminary")


@dataclass(frozen=True)
class PendingOrder:
    """An active ServiceRequest: a test ordered whose report is not back."""
    display: str
    status: str
    code: str | None
    authored: datetime | None
    category: str | None = None
    priority: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Administration:
    display: str
    status: str                      # in-progress | not-done | on-hold | completed | entered-in-error | stopped
    effective: datetime | None
    request_id: str | None
    code: str | None = None
    dose_text: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Flag:
    display: str
    status: str
    code: str | None
    category: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    system: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class PatientRecord:
    id: str
    mrn: str
    given: str
    family: str
    birth_date: date | None
    sex: str | None
    deceased: datetime | None = None
    identifiers: tuple[tuple[str | None, str], ...] = ()
    allergies: tuple[Allergy, ...] = ()                  # active only
    medications: tuple[Medication, ...] = ()             # active only
    conditions: tuple[Condition, ...] = ()               # active problems
    encounters: tuple[Encounter, ...] = ()
    observations: tuple[Observation, ...] = ()
    results: tuple[Result, ...] = ()
    pending_orders: tuple[PendingOrder, ...] = ()
    administrations: tuple[Administration, ...] = ()
    flags: tuple[Flag, ...] = ()                         # active only
    inactive_allergies: tuple[Allergy, ...] = ()
    medication_history: tuple[Medication, ...] = ()      # stopped / completed / cancelled / on-hold ...
    past_conditions: tuple[Condition, ...] = ()          # resolved / inactive / remission

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given, self.family) if p)

    def age(self, now: datetime) -> int | None:
        return age_years(self.birth_date, now)

    def current_encounter(self) -> Encounter | None:
        live = [e for e in self.encounters if e.status in ("in-progress", "arrived", "triaged", "onleave")]
        return max(live, key=lambda e: e.start or datetime.min.replace(tzinfo=timezone.utc), default=None)

    def bed_id(self) -> str | None:
        enc = self.current_encounter()
        bed = enc.bed() if enc else None
        return None if bed is None else (bed.identifier or bed.display or bed.location_id)

    def vitals_frame(self) -> pd.DataFrame:
        return observations_frame(self.observations)


def age_years(birth_date: date | None, now: datetime) -> int | None:
    """Completed years at `now` (a birthday on 29 Feb counts from 1 Mar in common years)."""
    if birth_date is None:
        return None
    today = now.date()
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def observations_frame(observations, patient_id: str | None = None) -> pd.DataFrame:
    """Tidy frame (ts UTC, code, name, value, unit, value_text, category), sorted by time."""
    obs = list(observations)
    frame = pd.DataFrame({
        "ts": pd.to_datetime([o.ts for o in obs], utc=True),
        "code": pd.Series([o.code for o in obs], dtype="str"),
        "name": pd.Series([o.name for o in obs], dtype="str"),
        "value": pd.Series([o.value for o in obs], dtype="float64"),
        "unit": pd.Series([o.unit for o in obs], dtype="str"),
        "value_text": pd.Series([o.value_text for o in obs], dtype="str"),
        "category": pd.Series([o.category for o in obs], dtype="str"),
    }, columns=OBSERVATION_COLUMNS)
    if patient_id is not None:
        frame.insert(0, "patient_id", patient_id)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
