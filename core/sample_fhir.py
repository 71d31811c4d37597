"""Seeded generator of FHIR R4 transaction Bundles for the sample site's in-patients, so the bedside
page has realistic clinical context without a real EHR. One Bundle per patient, urn:uuid references,
read back by `core.fhir.load`.

Per patient: Patient (MR identifier), bed and ward Locations, an in-progress inpatient Encounter at
the bed, active and resolved Conditions, AllergyIntolerances (some none, some high-criticality),
MedicationRequests (active with dose timing: doses due within hours, some overdue; a PRN; stopped
ones), MedicationAdministrations for doses given, 24 h of vital signs by LOINC, DiagnosticReports
(some issued in the last hours), pending ServiceRequests and a fall-risk Flag.

The first patient of the list is always the deteriorating one (vitals worsen over the last 8 h so
NEWS2 rises from 0 to the high band) with a high-criticality allergy and an overdue dose, so demos and
tests can rely on it; the rest is drawn from `seed`. Clinical codes below come from the Synthea data in
shared/external unless marked otherwise; vital-sign LOINC codes from standards.md 5.5."""
from __future__ import annotations

import uuid
import zlib
from dataclasses import fields, is_dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import orjson

from core.errors import InvalidInput
from core.fhir.codes import LOINC, SNOMED, V2_0203
from core.fhir.model import PatientRecord
from core.models import utc

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
BED_SYSTEM = "urn:wardsight:bed"
WARD_SYSTEM = "urn:wardsight:ward"
MRN_SYSTEM = "urn:wardsight:mrn"
REQUIRED = ("patient_id", "mrn", "given", "family", "birth_date", "sex", "bed_id", "ward_id")

PROBLEMS = [("233604007", "Pneumonia (disorder)"), ("91302008", "Sepsis (disorder)"),   # 233604007: SNOMED CT browser
            ("59621000", "Essential hypertension (disorder)"), ("44054006", "Diabetes mellitus type 2 (disorder)"),
            ("414545008", "Ischemic heart disease (disorder)"), ("271737000", "Anemia (disorder)"),
            ("127013003", "Disorder of kidney due to diabetes mellitus (disorder)"), ("10509002", "Acute bronchitis (disorder)")]
ALLERGENS = [(RXNORM, "7980", "Penicillin V", "medication"), (RXNORM, "1191", "Aspirin", "medication"),
             (RXNORM, "10831", "Sulfamethoxazole / Trimethoprim", "medication"),
             (SNOMED, "111088007", "Latex (substance)", "environment"),
             (SNOMED, "442571000124108", "Tree nut (substance)", "food"), (SNOMED, "102263004", "Eggs (edible) (substance)", "food")]
# (rxnorm, display, every_h, dose text)
DRUGS = [("314076", "lisinopril 10 MG Oral Tablet", 24, "10 mg orally once daily"),
         ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", 12, "500 mg orally twice daily"),
         ("314231", "Simvastatin 10 MG Oral Tablet", 24, "10 mg orally at night"),
         ("562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", 8, "1 tablet orally every 8 h"),
         ("310798", "Hydrochlorothiazide 25 MG Oral Tablet", 24, "25 mg orally once daily"),
         ("206905", "Ibuprofen 400 MG Oral Tablet [Ibu]", 6, "400 mg orally every 6 h")]
PRN = ("313782", "Acetaminophen 325 MG Oral Tablet", "650 mg orally every 6 h as needed for pain")
# Lab panels seen in Synthea (58410-2, 51990-0) with one headline result each (LOINC, loinc.org).
LABS = [("58410-2", "Complete blood count (hemogram) panel - Blood by Automated count", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.0, 1.5),
        ("51990-0", "Basic metabolic panel - Blood", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.4)]
# Pending tests (LOINC codes from loinc.org; sample data only).
PENDING = [("600-7", "Bacteria identified in Blood by Culture"), ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma"),
           ("2524-7", "Lactate [Moles/volume] in Serum or Plasma"), ("6598-7", "Troponin T.cardiac [Mass/volume] in Serum or Plasma")]
FALL_RISK = (SNOMED, "129839007", "At risk for falls")     # SNOMED CT browser; not in standards.md
# Vital signs (LOINC, standards.md 5.5): name → (code, display, unit, normal mean, sd, decimals).
VITALS = {"rr": ("9279-1", "Respiratory rate", "/min", 16, 1.5, 0), "pulse": ("8867-4", "Heart rate", "/min", 76, 6, 0),
          "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 97, 0.8, 0),
          "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]", 128, 8, 0),
          "dbp": ("8462-4", "Diastolic blood pressure", "mm[Hg]", 76, 5, 0),
          "temp": ("8310-5", "Body temperature", "Cel", 36.8, 0.25, 1)}
# Deteriorating patient: value reached at `now` (scale-1 NEWS2 subscores per standards.md 1.1:
# RR 26→3, SpO2 91→3, SBP 96→2, pulse 118→2, temp 38.6→1, +2 on oxygen: total 13, high band).
WORST = {"rr": 26, "spo2": 91, "sbp": 96, "dbp": 58, "pulse": 118, "temp": 38.6}
ACVPU = ("1104441000000107", "ACVPU scale")                 # SNOMED, standards.md 1.1
INSPIRED_O2 = ("3150-0", "Inhaled oxygen concentration")  # LOINC, standards.md 5.5 [R]


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def _cc(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class _Bundle:
    """Accumulates transaction entries; uuids come from the rng so output is reproducible."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.entries = rng, []

    def add(self, resource: dict, put: str | None = None, urn: str | None = None) -> str:
        urn = urn or f"urn:uuid:{uuid.UUID(bytes=self.rng.bytes(16), version=4)}"
        resource.setdefault("id", urn.rsplit(":", 1)[-1])
        request = {"method": "PUT", "url": put} if put else {"method": "POST", "url": resource["resourceType"]}
        self.entries.append({"fullUrl": urn, "resource": resource, "request": request})
        return urn

    def doc(self) -> dict:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def _location(b: _Bundle, system: str, value: str, physical: str, display: str, part_of: str | None) -> str:
    # Same Location in every bundle → same deterministic urn, so a folder import sees one resource.
    urn = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}|{value}')}"
    res = {"resourceType": "Location", "identifier": [{"system": system, "value": value}], "status": "active",
           "name": value, "mode": "instance",
           "physicalType": _cc("http://terminology.hl7.org/CodeSystem/location-physical-type", physical, display)}
    if part_of:
        res["partOf"] = {"reference": part_of}
    return b.add(res, put=f"Location/{urn.rsplit(':', 1)[-1]}", urn=urn)


def _patient(b: _Bundle, p: Mapping) -> str:
    res = {"resourceType": "Patient", "id": str(p["patient_id"]),
           "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical Record Number"}]},
                           "system": MRN_SYSTEM, "value": str(p["mrn"])}],
           "name": [{"use": "official", "family": str(p["family"]), "given": [str(p["given"])]}],
           "gender": str(p["sex"]), "birthDate": str(p["birth_date"])}
    return b.add(res, put=f"Patient/{p['patient_id']}")


def _encounter(b: _Bundle, pat: str, bed: str, ward: str, start: datetime) -> str:
    loc_type = "http://terminology.hl7.org/CodeSystem/location-physical-type"
    return b.add({"resourceType": "Encounter", "status": "in-progress",
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
                  "subject": {"reference": pat}, "period": {"start": _iso(start)},
                  "location": [{"location": {"reference": bed}, "status": "active", "physicalType": _cc(loc_type, "bd", "Bed")},
                               {"location": {"reference": ward}, "status": "active", "physicalType": _cc(loc_type, "wa", "Ward")}]})


def _conditions(b: _Bundle, pat: str, enc: str, start: datetime) -> None:
    picks = b.rng.choice(len(PROBLEMS), size=int(b.rng.integers(2, 4)), replace=False)
    for n, i in enumerate(picks):
        code, display = PROBLEMS[i]
        resolved = n == len(picks) - 1          # the last one is history, not an active problem
        res = {"resourceType": "Condition", "subject": {"reference": pat}, "encounter": {"reference": enc},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                              "code": "resolved" if resolved else "active"}]},
               "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
               "code": _cc(SNOMED, code, display),
               "onsetDateTime": _iso(start - timedelta(days=int(b.rng.integers(0, 2000))))}
        if resolved:
            res["abatementDateTime"] = _iso(start - timedelta(days=int(b.rng.integers(1, 30))))
        b.add(res)


def _allergies(b: _Bundle, pat: str, index: int, start: datetime) -> None:
    kind = index % 3                          # 0: a high-criticality one, 1: none, 2: low only
    if kind == 1:
        return
    picks = [0] if index == 0 else list(b.rng.choice(len(ALLERGENS), size=int(b.rng.integers(1, 3)), replace=False))
    for n, i in enumerate(picks):
        system, code, display, category = ALLERGENS[i]
        b.add({"resourceType": "AllergyIntolerance", "patient": {"reference": pat},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
               "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]},
               "type": "allergy", "category": [category], "criticality": "high" if kind == 0 and n == 0 else "low",
               "code": _cc(system, code, display), "recordedDate": _iso(start - timedelta(days=400))})


def _med_request(b: _Bundle, pat: str, enc: str, drug: tuple, status: str, authored: datetime,
                 anchor: datetime | None, prn: bool = False) -> str:
    code, display, *rest = drug
    dose_text = rest[-1]
    dosage = {"sequence": 1, "text": dose_text, "asNeededBoolean": prn}
    if anchor is not None:
        dosage["timing"] = {"repeat": {"frequency": 1, "period": rest[0], "periodUnit": "h", "boundsPeriod": {"start": _iso(anchor)}}}
    return b.add({"resourceType": "MedicationRequest", "status": status, "intent": "order", "subject": {"reference": pat},
                  "encounter": {"reference": enc}, "medicationCodeableConcept": _cc(RXNORM, code, display),
                  "authoredOn": _iso(authored), "dosageInstruction": [dosage]})


def _medications(b: _Bundle, pat: str, enc: str, now: datetime, start: datetime, index: int) -> None:
    picks = b.rng.choice(len(DRUGS), size=int(b.rng.integers(2, 5)), replace=False)
    for n, i in enumerate(picks[:-1] if len(picks) > 2 else picks):
        drug = DRUGS[i]
        every = timedelta(hours=drug[2])
        next_due = now + timedelta(minutes=float(b.rng.uniform(5, 180)))
        anchor = next_due - every * ((next_due - start) // every)
        req = _med_request(b, pat, enc, drug, "active", start, anchor)
        overdue = (index == 0 and n == 0) or b.rng.random() < 0.2
        last_due = next_due - every
        # For an overdue order the last due dose (if more than 45 min ago) is simply not given.
        skip_last = overdue and last_due < now - timedelta(minutes=45)
        due = last_due - every * np.arange(0, int(timedelta(hours=24) / every) + 1)
        for k, t in enumerate(due.tolist()):
            if t < anchor or (k == 0 and skip_last) or t > now:
                continue
            given = t + timedelta(minutes=float(b.rng.uniform(-10, 25)))
            b.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": {"reference": pat},
                   "context": {"reference": enc}, "medicationCodeableConcept": _cc(RXNORM, drug[0], drug[1]),
                   "effectiveDateTime": _iso(min(given, now)), "request": {"reference": req}, "dosage": {"text": drug[3]}})
    if len(picks) > 2:
        _med_request(b, pat, enc, DRUGS[picks[-1]], "stopped", start - timedelta(days=90), None)
    _med_request(b, pat, enc, PRN, "active", start, None, prn=True)


def _vital_series(rng: np.random.Generator, now: datetime, deteriorating: bool) -> tuple[list[datetime], dict[str, np.ndarray]]:
    if deteriorating:   # 4-hourly until 8 h ago, then hourly while it worsens
        offsets_h = np.concatenate([np.arange(23.75, 9, -4), np.arange(8.25, 0, -1)])
    else:
        offsets_h = np.arange(24, 0, -4) - float(rng.uniform(0.3, 3.5))
    times = [now - timedelta(hours=float(h)) for h in offsets_h]
    frac = np.clip((8.25 - offsets_h) / 8.0, 0.0, 1.0) if deteriorating else np.zeros(len(offsets_h))
    values = {}
    for name, (_, _, _, mean, sd, decimals) in VITALS.items():
        noise = rng.normal(0.0, sd * (0.3 if deteriorating else 1.0), len(offsets_h))
        target = WORST[name] if deteriorating else mean
        v = mean + (target - mean) * frac + noise * (1 - frac)
        values[name] = np.round(v, decimals)
    values["spo2"] = np.minimum(values["spo2"], 100)
    return times, values


def _observations(b: _Bundle, pat: str, enc: str, now: datetime, deteriorating: bool) -> None:
    times, values = _vital_series(b.rng, now, deteriorating)
    cat = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]

    def qty(name, k):
        code, display, unit, *_ = VITALS[name]
        return {"code": _cc(LOINC, code, display), "valueQuantity": {"value": values[name][k].item(), "unit": unit,
                                                                       "system": "http://unitsofmeasure.org", "code": unit}}

    for k, ts in enumerate(times):
        base = {"resourceType": "Observation", "status": "final", "category": cat, "subject": {"reference": pat},
                "encounter": {"reference": enc}, "effectiveDateTime": _iso(ts)}
        for name in ("rr", "pulse", "spo2", "temp"):
            b.add({**base, **qty(name, k)})
        b.add({**base, "code": _cc(LOINC, "85354-9", "Blood pressure panel with all children optional"),
               "component": [qty("sbp", k), qty("dbp", k)]})
        b.add({**base, "code": _cc(SNOMED, *ACVPU), "valueCodeableConcept": _cc(SNOMED, "A", "Alert")})
        if deteriorating and (now - ts) <= timedelta(hours=3):
            b.add({**base, "code": _cc(LOINC, *INSPIRED_O2),
                   "valueQuantity": {"value": 28, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}})


def _results(b: _Bundle, pat: str, enc: str, now: datetime, deteriorating: bool) -> None:
    for n, (code, display, r_code, r_display, unit, mean, sd) in enumerate(LABS):
        # the first panel came back within the last hours (new since a morning visit), the other earlier
        issued = now - timedelta(hours=float(b.rng.uniform(0.5, 6) if n == 0 else b.rng.uniform(6, 30)))
        value = round(float(b.rng.normal(mean, sd)), 1)
        lab = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        res = b.add({"resourceType": "Observation", "status": "final", "category": [lab], "subject": {"reference": pat},
                     "encounter": {"reference": enc}, "code": _cc(LOINC, r_code, r_display),
                     "effectiveDateTime": _iso(issued - timedelta(hours=2)),
                     "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
        b.add({"resourceType": "DiagnosticReport", "status": "final", "subject": {"reference": pat}, "encounter": {"reference": enc},
               "category": [_cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
               "code": _cc(LOINC, code, display), "effectiveDateTime": _iso(issued - timedelta(hours=2)),
               "issued": _iso(issued), "result": [{"reference": res, "display": r_display}]})
    picks = [0, 2] if deteriorating else list(b.rng.choice(len(PENDING), size=int(b.rng.integers(0, 3)), replace=False))
    for i in picks:
        b.add({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": {"reference": pat},
               "encounter": {"reference": enc}, "category": [_cc(SNOMED, "108252007", "Laboratory procedure")],
               "code": _cc(LOINC, *PENDING[i]), "priority": "urgent" if deteriorating else "routine",
               "authoredOn": _iso(now - timedelta(hours=float(b.rng.uniform(0.3, 4))))})


def _flag(b: _Bundle, pat: str, start: datetime) -> None:
    b.add({"resourceType": "Flag", "status": "active", "subject": {"reference": pat},
           "category": [_cc("http://terminology.hl7.org/CodeSystem/flag-category", "safety", "Safety")],
           "code": _cc(*FALL_RISK), "period": {"start": _iso(start)}})


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def patient_bundle(p: Mapping, index: int, now: datetime, seed: int) -> dict:
    """One transaction Bundle for one patient row; `index` 0 is the deteriorating patient."""
    missing = [k for k in REQUIRED if p.get(k) in (None, "")]
    if missing:
        raise InvalidInput(f"patient row {p.get('patient_id')!r} lacks {', '.join(missing)}")
    rng = np.random.default_rng([seed, zlib.crc32(str(p["patient_id"]).encode())])
    b = _Bundle(rng)
    pat = _patient(b, p)
    ward = _location(b, WARD_SYSTEM, str(p["ward_id"]), "wa", "Ward", None)
    bed = _location(b, BED_SYSTEM, str(p["bed_id"]), "bd", "Bed", ward)
    start = now - timedelta(hours=float(rng.uniform(26, 240)))
    enc = _encounter(b, pat, bed, ward, start)
    deteriorating = index == 0
    _conditions(b, pat, enc, start)
    _allergies(b, pat, index, start)
    _medications(b, pat, enc, now, start, index)
    _observations(b, pat, enc, now, deteriorating)
    _results(b, pat, enc, now, deteriorating)
    fall = _truthy(p["fall_risk"]) if "fall_risk" in p else rng.random() < 0.25
    if fall or deteriorating:
        _flag(b, pat, start)
    return b.doc()


def generate_bundles(patients: Iterable[Mapping], now: datetime, seed: int) -> dict[str, dict]:
    now = utc(now)
    return {str(p["patient_id"]): patient_bundle(p, i, now, seed) for i, p in enumerate(patients)}


def write_bundles(patients: Iterable[Mapping], out_dir: str | Path, now: datetime, seed: int) -> list[Path]:
    """Write `<patient_id>.json` per patient into `out_dir`; `core.fhir.load(out_dir)` reads them back."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for pid, doc in generate_bundles(patients, now, seed).items():
        path = out / f"{pid}.json"
        path.write_bytes(orjson.dumps(doc))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- committed sample + re-basing

# The committed bundles in sample_data/fhir are generated as if "now" were SAMPLE_ANCHOR (also written
# as each Bundle.timestamp). `load_sample` shifts every time by (now - anchor), so whenever the demo
# runs the vitals cover the last 24 h, doses fall due in the next hours and results are recent.
SAMPLE_ANCHOR = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SAMPLE_SEED = 20260115
SAMPLE_FHIR_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "fhir"


def write_sample(patients_csv: str | Path, out_dir: str | Path = SAMPLE_FHIR_DIR,
                 anchor: datetime = SAMPLE_ANCHOR, seed: int = SAMPLE_SEED) -> list[Path]:
    """Regenerate the committed sample: one transaction Bundle per row of `patients_csv`."""
    import csv
    with open(patients_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = Path(out_dir)
    for old in out.glob("*.json"):          # a patient removed from the CSV must not linger
        old.unlink()
    paths = write_bundles(rows, out, anchor, seed)
    for path in paths:                       # stamp the anchor so a reader can see what "now" was
        doc = orjson.loads(path.read_bytes())
        path.write_bytes(orjson.dumps({"resourceType": "Bundle", "timestamp": _iso(utc(anchor)),
                                       **{k: v for k, v in doc.items() if k != "resourceType"}}))
    return paths


def _shift(value, delta: timedelta):
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, tuple):
        return tuple(_shift(v, delta) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        changed = {f.name: _shift(getattr(value, f.name), delta) for f in fields(value)}
        return replace(value, **changed)
    return value          # dates (birth dates), strings, numbers: not moved


def rebase(records: Mapping[str, PatientRecord], anchor: datetime, now: datetime) -> dict[str, PatientRecord]:
    """Move every datetime in `records` by (now - anchor); birth dates stay (ages stay true)."""
    delta = utc(now) - utc(anchor)
    return {pid: _shift(rec, delta) for pid, rec in records.items()}


def load_sample(now: datetime, folder: str | Path = SAMPLE_FHIR_DIR,
                anchor: datetime = SAMPLE_ANCHOR) -> dict[str, PatientRecord]:
    """The committed sample records, re-based so that the anchor becomes `now`."""
    from core.fhir import load
    return rebase(load(folder), anchor, now)


def load_records(folder: str | Path, now: datetime) -> dict[str, PatientRecord]:
    """The site's patient records: the committed sample folder is re-based to `now` (see
    SAMPLE_ANCHOR); any other folder (a real export) is loaded as it is."""
    from core.fhir import load
    if Path(folder).resolve() == SAMPLE_FHIR_DIR.resolve():
        return load_sample(now, folder)
    return load(folder)


if __name__ == "__main__":
    import argparse
    from core.config import SAMPLE_DIR
    ap = argparse.ArgumentParser(description="Regenerate sample_data/fhir from sample_data/patients.csv")
    ap.add_argument("--patients", default=str(SAMPLE_DIR / "patients.csv"))
    ap.add_argument("--out", default=str(SAMPLE_FHIR_DIR))
    ap.add_argument("--seed", type=int, default=SAMPLE_SEED)
    args = ap.parse_args()
    written = write_sample(args.patients, args.out, SAMPLE_ANCHOR, args.seed)
    print(f"{len(written)} bundles written to {args.out} (anchor {_iso(SAMPLE_ANCHOR)})")
