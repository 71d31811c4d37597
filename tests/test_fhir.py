"""Unit tests for core.fhir with small hand-written bundles (no external data needed)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from core.errors import FhirError
from core.fhir import DoseTiming, FhirResourceError, Medication, age_years, load, load_with_report, parse_dt

UTC = timezone.utc
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def patient(pid="p1", mrn="MRN001", **extra):
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1950-03-01",
            "name": [{"use": "official", "family": "Nguyen", "given": ["Ana", "B"]}],
            "identifier": [{"system": "urn:ssn", "value": "999"},
                           {"type": MR, "system": "urn:hosp:mrn", "value": mrn}], **extra}


def allergy(ref, text="Penicillin", status="active", criticality="high", **extra):
    return {"resourceType": "AllergyIntolerance", "patient": {"reference": ref}, "criticality": criticality,
            "clinicalStatus": {"coding": [{"code": status}]}, "code": {"text": text}, **extra}


def med(ref, text="Amoxicillin", status="active", **extra):
    return {"resourceType": "MedicationRequest", "status": status, "intent": "order", "subject": {"reference": ref},
            "medicationCodeableConcept": {"text": text}, **extra}


def obs(ref, code, value, unit, ts="2026-01-10T08:00:00+01:00", **extra):
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": ref},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": ts,
            "valueQuantity": {"value": value, "code": unit}, **extra}


def bundle(resources, kind="transaction", urls=None):
    entries = []
    for i, r in enumerate(resources):
        url = (urls or {}).get(i, f"urn:uuid:00000000-0000-4000-8000-{i:012d}")
        entries.append({"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def write(tmp_path, doc, name="b.json"):
    path = tmp_path / name
    path.write_bytes(orjson.dumps(doc))
    return path


PAT_URN = "urn:uuid:00000000-0000-4000-8000-000000000000"


def test_transaction_bundle_with_urn_uuid_references(tmp_path):
    doc = bundle([patient(), allergy(PAT_URN), allergy(PAT_URN, "Latex", status="resolved"),
                  med(PAT_URN), med(PAT_URN, "Ibuprofen", status="stopped"),
                  {"resourceType": "Condition", "subject": {"reference": PAT_URN}, "code": {"text": "Pneumonia"},
                   "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2026-01-08"},
                  {"resourceType": "Condition", "subject": {"reference": PAT_URN}, "code": {"text": "Otitis"},
                   "clinicalStatus": {"coding": [{"code": "resolved"}]}}])
    records = load(write(tmp_path, doc))
    rec = records["p1"]
    assert (rec.mrn, rec.given, rec.family, rec.name, rec.sex) == ("MRN001", "Ana B", "Nguyen", "Ana B Nguyen", "female")
    assert [a.display for a in rec.allergies] == ["Penicillin"] and rec.allergies[0].high_risk
    assert [a.display for a in rec.inactive_allergies] == ["Latex"]
    assert [m.display for m in rec.medications] == ["Amoxicillin"]
    assert [m.display for m in rec.medication_history] == ["Ibuprofen"]
    assert [c.display for c in rec.conditions] == ["Pneumonia"]
    assert rec.conditions[0].onset == datetime(2026, 1, 8, tzinfo=UTC)
    assert [c.display for c in rec.past_conditions] == ["Otitis"]


@pytest.mark.parametrize("ref", ["Patient?identifier=urn:hosp:mrn|MRN002", "Patient?identifier=MRN002",
                                 "Patient/p2", "http://fhir.example.org/r4/Patient/p2/_history/3"],
                         ids=["conditional-system", "conditional-value-only", "relative", "absolute-history"])
def test_reference_forms_resolve_to_the_right_patient(tmp_path, ref):
    doc = bundle([patient("p1", "MRN001"), patient("p2", "MRN002"), med(ref, "Heparin")])
    records, report = load_with_report(write(tmp_path, doc))
    assert [m.display for m in records["p2"].medications] == ["Heparin"]
    assert records["p1"].medications == ()
    assert report.errors == []


def test_logical_identifier_reference(tmp_path):
    m = med("x")
    m["subject"] = {"type": "Patient", "identifier": {"system": "urn:hosp:mrn", "value": "MRN002"}}
    records = load(write(tmp_path, bundle([patient("p1", "MRN001"), patient("p2", "MRN002"), m])))
    assert len(records["p2"].medications) == 1


def test_collection_bundle_with_absolute_full_urls(tmp_path):
    base = "http://fhir.example.org/r4/"
    doc = bundle([patient("p9"), allergy(base + "Patient/p9"), allergy("Patient/p9", "Nuts")], kind="collection",
                 urls={0: base + "Patient/p9", 1: base + "AllergyIntolerance/a1", 2: base + "AllergyIntolerance/a2"})
    for e in doc["entry"]:
        del e["request"]
    records = load(write(tmp_path, doc))
    assert sorted(a.display for a in records["p9"].allergies) == ["Nuts", "Penicillin"]


def test_patient_without_id_takes_its_urn_uuid(tmp_path):
    p = patient()
    del p["id"]
    records = load(write(tmp_path, bundle([p, med(PAT_URN)])))
    assert list(records) == ["00000000-0000-4000-8000-000000000000"]
    assert len(records["00000000-0000-4000-8000-000000000000"].medications) == 1


MALFORMED = [
    ({"resourceType": "AllergyIntolerance", "patient": {"reference": PAT_URN}}, "required element 'code'"),
    (obs(PAT_URN, "9279-1", "fast", "/min"), "is not a number"),
    (obs(PAT_URN, "9279-1", 18, "/min", ts="2026-01-10T08:00:00"), "no time zone"),
    (obs(PAT_URN, "9279-1", 18, "/min", ts="yesterday"), "not a FHIR dateTime"),
    (med("Patient/nobody"), "does not resolve to a Patient"),
    (med(PAT_URN, status=None), "required element 'status'"),
    ({"resourceType": "MedicationRequest", "status": "active", "subject": {"reference": PAT_URN}}, "neither medicationCodeableConcept"),
    ({"resourceType": "Flag", "status": "active", "subject": {"reference": PAT_URN}, "code": "fall"}, "CodeableConcept"),
]


@pytest.mark.parametrize("bad,reason", MALFORMED, ids=["allergy-no-code", "obs-text-value", "naive-time", "bad-date",
                                                       "unknown-patient", "no-status", "med-no-drug", "code-not-concept"])
def test_malformed_resource_is_collected_and_the_rest_imported(tmp_path, bad, reason):
    doc = bundle([patient(), bad, med(PAT_URN, "Good")])
    records, report = load_with_report(write(tmp_path, doc))
    assert [m.display for m in records["p1"].medications] == ["Good"]
    assert len(report.errors) == 1
    err = report.errors[0]
    assert isinstance(err, FhirError) and isinstance(err, ValueError)
    assert reason in err.reason and err.position == 1 and err.source == "b.json"


def test_unknown_types_counted_and_skipped_entered_in_error_excluded(tmp_path):
    doc = bundle([patient(), {"resourceType": "Claim", "id": "c"}, {"resourceType": "Claim"},
                  med(PAT_URN, status="entered-in-error"), allergy(PAT_URN, verificationStatus={"coding": [{"code": "refuted"}]})])
    doc["entry"].append({"request": {"method": "DELETE", "url": "Patient/old"}})
    records, report = load_with_report(write(tmp_path, doc))
    assert report.skipped == {"Claim": 2}
    assert report.excluded == {"MedicationRequest:entered-in-error": 1}
    assert records["p1"].medications == () and records["p1"].medication_history == ()
    assert records["p1"].allergies == () and len(records["p1"].inactive_allergies) == 1   # refuted
    assert [e.reason for e in report.errors] == ["bundle entry has no resource"]
    assert report.read["Claim"] == 2 and report.used["Patient"] == 1


def test_ndjson_folder_with_a_broken_line(tmp_path):
    (tmp_path / "Patient.000.ndjson").write_bytes(orjson.dumps(patient()) + b"\n" + orjson.dumps(patient("p2", "M2")))
    (tmp_path / "MedicationRequest.000.ndjson").write_bytes(
        orjson.dumps(med("Patient/p1")) + b"\n{not json\n\n" + orjson.dumps(med("Patient/p2", "B")) + b"\n")
    (tmp_path / "log.ndjson").write_text('{"eventId": "kickoff"}\n')
    (tmp_path / "notes.txt").write_text("ignore me")
    records, report = load_with_report(tmp_path)
    assert set(records) == {"p1", "p2"}
    assert [m.display for m in records["p2"].medications] == ["B"]
    assert len(report.errors) == 1 and report.errors[0].position == 2 and "invalid JSON" in report.errors[0].reason
    assert sorted(report.ignored_files) == ["log.ndjson", "notes.txt"]


def test_unreadable_file_raises_fhir_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(FhirError, match="invalid JSON"):
        load(bad)
    with pytest.raises(FhirError, match="no such"):
        load(tmp_path / "missing.json")


def test_bad_file_inside_a_folder_is_collected(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    write(tmp_path, bundle([patient()]), "good.json")
    records, report = load_with_report(tmp_path)
    assert list(records) == ["p1"] and "invalid JSON" in report.errors[0].reason


def test_vitals_tidy_with_bp_components_and_unit_conversion(tmp_path):
    bp = {"resourceType": "Observation", "status": "final", "subject": {"reference": PAT_URN},
          "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
          "effectiveDateTime": "2026-01-10T07:00:00Z",
          "component": [{"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 118, "code": "mm[Hg]"}},
                        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 76, "code": "mm[Hg]"}}]}
    acvpu = {"resourceType": "Observation", "status": "final", "subject": {"reference": PAT_URN},
             "code": {"coding": [{"code": "1104441000000107"}]}, "effectiveDateTime": "2026-01-10T07:00:00Z",
             "valueCodeableConcept": {"coding": [{"code": "A"}]}}
    doc = bundle([patient(), bp, obs(PAT_URN, "8310-5", 100.4, "[degF]"), obs(PAT_URN, "2339-0", 180.16, "mg/dL"),
                  obs(PAT_URN, "59408-5", 94, "%"), acvpu])
    frame = load(write(tmp_path, doc))["p1"].vitals_frame()
    got = {n: (v, t) for n, v, t in frame[["name", "value", "value_text"]].itertuples(index=False)}
    assert got["sbp_mmhg"][0] == 118 and got["dbp_mmhg"][0] == 76 and got["spo2_pct"][0] == 94
    assert got["temp_c"][0] == pytest.approx(38.0)             # (100.4 - 32) * 5/9
    assert got["glucose_mmol_l"][0] == pytest.approx(10.0)     # 180.16 / 18.016
    assert got["consciousness"][1] == "A"
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame.loc[frame["name"] == "temp_c", "ts"].iloc[0] == datetime(2026, 1, 10, 7, tzinfo=UTC)


def test_bed_from_in_progress_encounter(tmp_path):
    bed = {"resourceType": "Location", "id": "loc-b1", "identifier": [{"system": "urn:site:bed", "value": "WA-S1-1"}],
           "physicalType": {"coding": [{"code": "bd"}]}}
    old = {"resourceType": "Encounter", "status": "finished", "subject": {"reference": PAT_URN},
           "period": {"start": "2025-01-01T00:00:00Z"}, "location": [{"location": {"reference": "Location/loc-b1"}}]}
    now_enc = {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "IMP"},
               "subject": {"reference": PAT_URN}, "period": {"start": "2026-01-09T10:00:00Z"},
               "location": [{"location": {"reference": "Location?identifier=urn:site:bed|WA-S1-1"}, "status": "active"}]}
    rec = load(write(tmp_path, bundle([patient(), bed, old, now_enc])))["p1"]
    assert rec.current_encounter().class_code == "IMP"
    assert rec.bed_id() == "WA-S1-1"


@pytest.mark.parametrize("raw,expected", [
    ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-02", datetime(2026, 2, 1, tzinfo=UTC)),
    ("2026-02-03", datetime(2026, 2, 3, tzinfo=UTC)),
    ("2026-02-03T04:05:06Z", datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ("2026-02-03T04:05:06.250-05:00", datetime(2026, 2, 3, 9, 5, 6, 250000, tzinfo=UTC)),
    (None, None),
], ids=["year", "month", "date", "zulu", "offset-fraction", "absent"])
def test_parse_dt(raw, expected):
    assert parse_dt(raw) == expected


@pytest.mark.parametrize("raw", ["2026-02-03T04:05:06", "03/02/2026", "", 20260203], ids=["naive", "us-style", "empty", "number"])
def test_parse_dt_refuses(raw):
    with pytest.raises(FhirResourceError):
        parse_dt(raw)


@pytest.mark.parametrize("identifiers,expected", [
    ([{"system": "a", "value": "1"}, {"type": MR, "value": "M7"}], "M7"),
    ([{"system": "a", "value": "1"}, {"use": "official", "value": "O5"}], "O5"),
    ([{"system": "a", "value": "1"}], "1"),
    ([], "p1"),
], ids=["mr-type", "official", "first", "id"])
def test_mrn_fallbacks(tmp_path, identifiers, expected):
    p = patient()
    p["identifier"] = identifiers
    assert load(write(tmp_path, bundle([p])))["p1"].mrn == expected


@pytest.mark.parametrize("born,now,age", [
    (date(1950, 3, 1), datetime(2026, 2, 28, 23, tzinfo=UTC), 75),
    (date(1950, 3, 1), datetime(2026, 3, 1, tzinfo=UTC), 76),
    (date(2000, 2, 29), datetime(2025, 2, 28, tzinfo=UTC), 24),
    (None, datetime(2026, 1, 1, tzinfo=UTC), None),
], ids=["day-before", "birthday", "leap-day", "unknown"])
def test_age_years(born, now, age):
    assert age_years(born, now) == age


T0 = datetime(2026, 1, 10, 6, tzinfo=UTC)


@pytest.mark.parametrize("timing,window,expected_hours", [
    (DoseTiming(frequency=1, period=6, period_unit="h", bounds_start=T0), (T0 + timedelta(hours=1), T0 + timedelta(hours=13)), [6, 12]),
    (DoseTiming(frequency=4, period=1, period_unit="d", bounds_start=T0, bounds_end=T0 + timedelta(hours=10)),
     (T0, T0 + timedelta(days=1)), [0, 6]),
    (DoseTiming(events=(T0, T0 + timedelta(hours=3))), (T0 + timedelta(minutes=1), T0 + timedelta(hours=5)), [3]),
    (DoseTiming(frequency=1, period=1, period_unit="d", time_of_day=("08:00:00", "20:00:00")),
     (T0, T0 + timedelta(hours=24)), [2, 14]),
], ids=["q6h", "qid-bounded", "events", "time-of-day"])
def test_dose_times(timing, window, expected_hours):
    m = Medication(display="x", status="active", code=None, timing=timing, authored=T0 - timedelta(days=1))
    got = [(t - T0).total_seconds() / 3600 for t in m.due_between(*window)]
    assert got == expected_hours


def test_prn_has_no_due_times():
    m = Medication(display="x", status="active", code=None, as_needed=True,
                   timing=DoseTiming(frequency=1, period=4, period_unit="h", bounds_start=T0))
    assert m.due_between(T0, T0 + timedelta(days=1)) == ()
