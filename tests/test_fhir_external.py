"""core.fhir against the real Synthea exports in ../shared/external/synthea_fhir (never copied here).
Expected counts come from that folder's README.txt and from independent raw-JSON counts below."""
from __future__ import annotations

from collections import Counter

import orjson
import pandas as pd
import pytest

from core.fhir import load, load_with_report

pytestmark = pytest.mark.external

VERSIE = "Versie_Botsford_56121408-15fe-47a5-8279-6f05dee51464.json"
BRADLY = "Bradly_Douglas_18468941-bdaf-42a0-8648-cba7cafc27ce.json"


@pytest.fixture(scope="module")
def bulk_dir(external_dir):
    return external_dir / "synthea_fhir" / "bulk_10_patients"


@pytest.fixture(scope="module")
def bulk(bulk_dir):
    return load_with_report(bulk_dir)


def raw_lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_bulk_counts_match_the_readme(bulk):
    records, report = bulk
    assert len(records) == 13
    assert report.errors == []
    assert report.used["AllergyIntolerance"] == 11
    assert report.used["MedicationRequest"] == 1745
    assert report.used["Condition"] == 555
    assert report.used["Encounter"] == 1215
    assert report.skipped == {"Immunization": 161, "Organization": 43, "Practitioner": 43,
                              "PractitionerRole": 43, "Device": 16}
    meds = [m for r in records.values() for m in r.medications]
    history = [m for r in records.values() for m in r.medication_history]
    assert len(meds) == 23 and {m.status for m in meds} == {"active"}
    assert len(history) == 1722 and {m.status for m in history} == {"stopped"}
    assert sum(len(r.allergies) for r in records.values()) == 11


def test_bulk_encounter_classes_match_the_readme(bulk):
    records, _ = bulk
    classes = Counter(e.class_code for r in records.values() for e in r.encounters)
    assert classes == {"AMB": 1133, "IMP": 49, "EMER": 23, "HH": 9, "VR": 1}


@pytest.mark.parametrize("rtype,field,attrs", [
    ("MedicationRequest", "subject", ("medications", "medication_history")),
    ("AllergyIntolerance", "patient", ("allergies", "inactive_allergies")),
    ("Condition", "subject", ("conditions", "past_conditions")),
], ids=["medications", "allergies", "conditions"])
def test_bulk_every_resource_attached_to_its_patient(bulk, bulk_dir, rtype, field, attrs):
    records, _ = bulk
    expected: dict[str, set] = {}
    for r in raw_lines(bulk_dir / f"{rtype}.000.ndjson"):
        expected.setdefault(r[field]["reference"].removeprefix("Patient/"), set()).add(r["id"])
    got = {pid: {x.id for a in attrs for x in getattr(rec, a)} for pid, rec in records.items()}
    assert {pid: ids for pid, ids in got.items() if ids} == expected


def test_bulk_active_conditions_match_raw_clinical_status(bulk, bulk_dir):
    records, _ = bulk
    raw_active = {r["id"] for r in raw_lines(bulk_dir / "Condition.000.ndjson")
                  if r["clinicalStatus"]["coding"][0]["code"] == "active"}
    assert {c.id for r in records.values() for c in r.conditions} == raw_active


def test_bulk_conditional_location_references_resolve(bulk):
    records, _ = bulk
    locs = [loc for r in records.values() for e in r.encounters for loc in e.locations]
    assert len(locs) == 1215
    assert all(loc.location_id is not None for loc in locs)


def test_bulk_patient_demographics(bulk, bulk_dir):
    records, _ = bulk
    for raw in raw_lines(bulk_dir / "Patient.000.ndjson"):
        rec = records[raw["id"]]
        mr = [i["value"] for i in raw["identifier"] if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR"]
        assert rec.mrn == mr[0]
        assert rec.family == raw["name"][0]["family"] and rec.birth_date.isoformat() == raw["birthDate"]


@pytest.mark.parametrize("name,allergies,meds_total,meds_active", [
    (VERSIE, 10, 8, 2), (BRADLY, 0, 34, 0),
], ids=["versie", "bradly"])
def test_bundles(external_dir, name, allergies, meds_total, meds_active):
    path = external_dir / "synthea_fhir" / "bundles" / name
    records, report = load_with_report(path)
    assert report.errors == [] and len(records) == 1
    (pid, rec), = records.items()
    raw = orjson.loads(path.read_bytes())
    raw_meds = [e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    assert len(raw_meds) == meds_total == report.used["MedicationRequest"]
    assert {m["subject"]["reference"] for m in raw_meds} == {f"urn:uuid:{pid}"}
    assert {m.id for m in rec.medications + rec.medication_history} == {m["id"] for m in raw_meds}
    assert len(rec.medications) == meds_active and all(m.status == "active" for m in rec.medications)
    assert len(rec.allergies) == allergies == report.used["AllergyIntolerance"]


def test_bundle_vitals_match_the_extracted_csv(external_dir):
    folder = external_dir / "synthea_fhir" / "bundles"
    csv = pd.read_csv(folder / "vitals_extracted_from_bundles.csv")
    csv = csv[csv["loinc"].isin(["8480-6", "8462-4", "8331-1"])]
    records = load(folder)                      # both bundles from the folder; the CSV is ignored
    assert len(records) == 2
    frames = [r.vitals_frame().assign(patient_id=f"urn:uuid:{pid}") for pid, r in records.items()]
    ours = pd.concat(frames)
    ours = ours[ours["code"].isin(["8480-6", "8462-4", "8331-1"])]
    want = sorted(zip(csv["patient_id"], pd.to_datetime(csv["effectiveDateTime"], utc=True), csv["loinc"],
                      csv["value"].round(6)))
    got = sorted(zip(ours["patient_id"], ours["ts"], ours["code"], ours["value"].round(6)))
    assert got == want and len(got) > 20
