"""One pure function per FHIR resource type: resource dict → frozen item. They raise
`FhirResourceError` (a FhirError, hence a ValueError) with a precise reason on malformed input; the
reader collects those per resource so one bad entry never sinks an import."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable

from core.errors import FhirError
from core.fhir.codes import GLUCOSE_MG_DL_PER_MMOL_L, PANELS, VITALS
from core.fhir.model import (Administration, Allergy, Condition, DoseTiming, Encounter, EncounterLocation,
                             Flag, Medication, Observation, PendingOrder, Result)

Resolve = Callable[[Any], "tuple[str, str] | None"]      # reference dict → (resourceType, id)
LocationLookup = Callable[[Any], "tuple[str | None, str | None, str | None]"]


class FhirResourceError(FhirError):
    """One resource could not be read; `reason` says why, the rest says where."""

    def __init__(self, reason: str, *, source: str = "", position: int | None = None,
                 resource_type: str | None = None, resource_id: str | None = None):
        self.reason, self.source, self.position = reason, source, position
        self.resource_type, self.resource_id = resource_type, resource_id
        where = f"{source}#{position}" if position is not None else source
        super().__init__(f"{where} {resource_type or '?'}/{resource_id or '?'}: {reason}".strip())


def parse_dt(raw: Any, field_name: str = "dateTime") -> datetime | None:
    """FHIR dateTime/instant → tz-aware UTC. Partial dates (YYYY, YYYY-MM, YYYY-MM-DD) mean the start
    of that period in UTC; a time without a zone is refused (FHIR requires one, and we never guess)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise FhirResourceError(f"{field_name} is not a date string: {raw!r}")
    text = raw.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=timezone.utc)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=timezone.utc)
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FhirResourceError(f"{field_name} {raw!r} is not a FHIR dateTime ({exc})") from None
    if ts.tzinfo is None:
        raise FhirResourceError(f"{field_name} {raw!r} has a time but no time zone")
    return ts.astimezone(timezone.utc)


def parse_date(raw: Any) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else parse_dt(raw, "birthDate").date()
    except (TypeError, ValueError):
        raise FhirResourceError(f"birthDate {raw!r} is not a date") from None


def concept(cc: Any) -> tuple[str | None, str | None, str | None]:
    """CodeableConcept → (display, code, system) using text, then the first coding with a display."""
    if cc is None:
        return None, None, None
    if not isinstance(cc, dict):
        raise FhirResourceError(f"expected a CodeableConcept, got {type(cc).__name__}")
    codings = cc.get("coding") or []
    first = codings[0] if codings else {}
    display = cc.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
    return display or first.get("code"), first.get("code"), first.get("system")


def status_code(cc: Any) -> str | None:
    """clinicalStatus / verificationStatus CodeableConcept → its code."""
    return concept(cc)[1] if cc is not None else None


def _required(resource: dict, key: str) -> Any:
    value = resource.get(key)
    if value in (None, "", [], {}):
        raise FhirResourceError(f"required element '{key}' is missing")
    return value


def _period(p: Any) -> tuple[datetime | None, datetime | None]:
    p = p or {}
    return parse_dt(p.get("start"), "period.start"), parse_dt(p.get("end"), "period.end")


def _first_category(resource: dict) -> str | None:
    cats = resource.get("category") or []
    cats = cats if isinstance(cats, list) else [cats]
    return concept(cats[0])[1] if cats and isinstance(cats[0], dict) else None


def allergy(r: dict, resolve: Resolve) -> Allergy:
    display, code, system = concept(_required(r, "code"))
    clinical = status_code(r.get("clinicalStatus"))
    verification = status_code(r.get("verificationStatus"))
    if clinical is None:
        # R4: clinicalStatus may be absent only when entered-in-error; treat absence as active
        # unless refuted/entered-in-error, so an unmarked allergy is never hidden.
        clinical = "inactive" if verification in ("refuted", "entered-in-error") else "active"
    reactions = tuple(concept(m)[0] or "" for rx in r.get("reaction") or [] for m in rx.get("manifestation") or [])
    cats = r.get("category") or []
    return Allergy(display=display or "unnamed allergy", criticality=r.get("criticality"),
                   category=tuple(cats if isinstance(cats, list) else [cats]), code=code, system=system,
                   clinical_status=clinical, verification_status=verification, type=r.get("type"),
                   reactions=reactions, recorded=parse_dt(r.get("recordedDate"), "recordedDate"), id=r.get("id"))


def _timing(t: dict | None) -> DoseTiming | None:
    if not t:
        return None
    rep = t.get("repeat") or {}
    bounds = rep.get("boundsPeriod") or {}
    freq = rep.get("frequency")
    return DoseTiming(events=tuple(parse_dt(e, "timing.event") for e in t.get("event") or []),
                      frequency=int(freq) if freq is not None else None,
                      period=float(rep["period"]) if rep.get("period") is not None else None,
                      period_unit=rep.get("periodUnit"), time_of_day=tuple(rep.get("timeOfDay") or []),
                      bounds_start=parse_dt(bounds.get("start"), "boundsPeriod.start"),
                      bounds_end=parse_dt(bounds.get("end"), "boundsPeriod.end"))


def medication(r: dict, resolve: Resolve) -> Medication:
    status = _required(r, "status")
    if "medicationCodeableConcept" in r:
        display, code, system = concept(r["medicationCodeableConcept"])
    elif "medicationReference" in r:
        ref = r["medicationReference"]
        display, code, system = ref.get("display") or ref.get("reference"), None, None
    else:
        raise FhirResourceError("neither medicationCodeableConcept nor medicationReference is present")
    dosages = r.get("dosageInstruction") or []
    first = dosages[0] if dosages else {}
    enc = resolve(r.get("encounter"))
    return Medication(display=display or "unnamed medication", status=status, code=code, system=system,
                      intent=r.get("intent"), authored=parse_dt(r.get("authoredOn"), "authoredOn"),
                      dosage_text=first.get("text"), as_needed=bool(first.get("asNeededBoolean", False)),
                      timing=_timing(first.get("timing")), encounter_id=enc[1] if enc else None,
                      reasons=tuple(x.get("display") or "" for x in r.get("reasonReference") or [])
                      + tuple(concept(x)[0] or "" for x in r.get("reasonCode") or []), id=r.get("id"))


def condition(r: dict, resolve: Resolve) -> Condition:
    display, code, system = concept(_required(r, "code"))
    clinical = status_code(r.get("clinicalStatus"))
    if clinical is None:
        clinical = "resolved" if r.get("abatementDateTime") else "active"
    return Condition(display=display or "unnamed condition", code=code, clinical_status=clinical,
                     onset=parse_dt(r.get("onsetDateTime"), "onsetDateTime"),
                     abatement=parse_dt(r.get("abatementDateTime"), "abatementDateTime"),
                     recorded=parse_dt(r.get("recordedDate"), "recordedDate"), system=system, id=r.get("id"))


def encounter(r: dict, resolve: Resolve, location: LocationLookup) -> Encounter:
    status = _required(r, "status")
    cls = r.get("class") or {}
    start, end = _period(r.get("period"))
    locs = []
    for item in r.get("location") or []:
        ref = item.get("location") or {}
        loc_id, physical, ident = location(ref)
        physical = concept(item.get("physicalType"))[1] or physical
        locs.append(EncounterLocation(reference=ref.get("reference"), location_id=loc_id,
                                      display=ref.get("display"), status=item.get("status"),
                                      physical_type=physical, identifier=ident))
    types = r.get("type") or []
    return Encounter(id=r.get("id"), status=status, class_code=cls.get("code") if isinstance(cls, dict) else None,
                     type_display=concept(types[0])[0] if types else None, start=start, end=end,
                     locations=tuple(locs))


def _quantity(q: dict, code: str) -> tuple[float, str | None]:
    value = q.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise FhirResourceError(f"valueQuantity.value {value!r} is not a number")
    unit = q.get("code") or q.get("unit")
    value = float(value)
    name, canonical = VITALS.get(code, (None, None))
    if name == "temp_c" and unit in ("[degF]", "degF", "°F"):
        return (value - 32.0) * 5.0 / 9.0, "Cel"
    if name == "glucose_mmol_l" and unit in ("mg/dL", "mg/dl"):
        return value / GLUCOSE_MG_DL_PER_MMOL_L, "mmol/L"
    return value, unit if unit is not None else canonical


def _value(node: dict, code: str) -> tuple[float | None, str | None, str | None]:
    if "valueQuantity" in node:
        value, unit = _quantity(node["valueQuantity"], code)
        return value, unit, None
    if "valueCodeableConcept" in node:
        display, c, _ = concept(node["valueCodeableConcept"])
        return None, None, c or display
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in node:
            raw = node[key]
            return (float(raw), None, None) if key == "valueInteger" else (None, None, str(raw).lower() if key == "valueBoolean" else raw)
    return None, None, None


def observations(r: dict, resolve: Resolve) -> list[Observation]:
    """One Observation → tidy rows; panels (e.g. BP) yield one row per component."""
    display, code, _ = concept(_required(r, "code"))
    ts = parse_dt(r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
                  or r.get("effectiveInstant") or r.get("issued"), "effective")
    if ts is None:
        raise FhirResourceError("observation has no effective time")
    category = _first_category(r)
    nodes = [(display, code, r)] if code not in PANELS or not r.get("component") else []
    for comp in r.get("component") or []:
        c_display, c_code, _ = concept(comp.get("code"))
        nodes.append((c_display, c_code, comp))
    rows = []
    for disp, c, node in nodes:
        value, unit, text = _value(node, c or "")
        if value is None and text is None and c not in PANELS:
            continue
        name = VITALS.get(c or "", (disp or c or "observation",))[0]
        rows.append(Observation(ts=ts, code=c or "", name=name, value=value, unit=unit, value_text=text,
                                category=category, id=r.get("id")))
    return rows


def report(r: dict, resolve: Resolve) -> Result:
    display, code, _ = concept(_required(r, "code"))
    based_on = tuple(ref[1] for ref in (resolve(b) for b in r.get("basedOn") or []) if ref)
    return Result(display=display or "report", status=_required(r, "status"), code=code,
                  issued=parse_dt(r.get("issued"), "issued"),
                  effective=parse_dt(r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start"), "effective"),
                  category=_first_category(r), conclusion=r.get("conclusion"), based_on=based_on, id=r.get("id"))


def order(r: dict, resolve: Resolve) -> PendingOrder:
    display, code, _ = concept(_required(r, "code"))
    return PendingOrder(display=display or "order", status=_required(r, "status"), code=code,
                        authored=parse_dt(r.get("authoredOn"), "authoredOn"), category=_first_category(r),
                        priority=r.get("priority"), id=r.get("id"))


def administration(r: dict, resolve: Resolve) -> Administration:
    if "medicationCodeableConcept" in r:
        display, code, _ = concept(r["medicationCodeableConcept"])
    else:
        display, code = (r.get("medicationReference") or {}).get("display"), None
    effective = parse_dt(r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start"), "effective")
    req = resolve(r.get("request"))
    dose = (r.get("dosage") or {}).get("text")
    return Administration(display=display or "medication", status=_required(r, "status"), effective=effective,
                          request_id=req[1] if req else None, code=code, dose_text=dose, id=r.get("id"))


def flag(r: dict, resolve: Resolve) -> Flag:
    display, code, system = concept(_required(r, "code"))
    start, end = _period(r.get("period"))
    return Flag(display=display or "flag", status=_required(r, "status"), code=code,
                category=_first_category(r), start=start, end=end, system=system, id=r.get("id"))
