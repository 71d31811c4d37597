"""The committed sample_data/fhir bundles: they import cleanly, match patients.csv, are exactly what
the documented command regenerates, and re-basing keeps their times meaningful on any day."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.bedside import build_bedside_view, news2_from_vitals
from core.config import SAMPLE_DIR
from core.fhir import load_with_report
from core.sample_fhir import SAMPLE_ANCHOR, SAMPLE_FHIR_DIR, load_records, load_sample, rebase, write_sample

PATIENTS = pd.read_csv(SAMPLE_DIR / "patients.csv", dtype=str)


@pytest.fixture(scope="module")
def imported():
    return load_with_report(SAMPLE_FHIR_DIR)


def _raw_counts() -> Counter:
    counts = Counter()
    for path in sorted(SAMPLE_FHIR_DIR.glob("*.json")):
        doc = json.loads(path.read_bytes())
        assert (doc["resourceType"], doc["type"], doc["timestamp"]) == ("Bundle", "transaction", "2026-01-15T12:00:00Z")
        counts.update(e["resource"]["resourceType"] for e in doc["entry"])
    return counts


def test_one_bundle_per_sample_patient_and_every_resource_used(imported):
    records, report = imported
    assert sorted(p.stem for p in SAMPLE_FHIR_DIR.glob("*.json")) == sorted(PATIENTS["patient_id"])
    assert set(records) == set(PATIENTS["patient_id"])
    assert report.errors == [] and report.skipped == {} and report.excluded == {}
    raw = _raw_counts()
    assert report.read == raw                      # nothing lost between the files and the import
    assert report.used == raw                      # every reference resolved to its patient


def test_records_match_patients_csv_and_beds_resolve_through_locations(imported):
    records, _ = imported
    for p in PATIENTS.itertuples(index=False):
        rec = records[p.patient_id]
        assert (rec.mrn, rec.given, rec.family, rec.sex, str(rec.birth_date)) == (p.mrn, p.given, p.family, p.sex, p.birth_date)
        assert rec.bed_id() == p.bed_id            # Encounter.location → urn:uuid Location → identifier


def test_active_and_stopped_orders_are_kept_apart(imported):
    records, _ = imported
    active = [m for r in records.values() for m in r.medications]
    history = [m for r in records.values() for m in r.medication_history]
    assert active and history
    assert {m.status for m in active} == {"active"} and {m.status for m in history} == {"stopped"}
    assert all(c.clinical_status == "active" for r in records.values() for c in r.conditions)
    assert all(c.clinical_status == "resolved" for r in records.values() for c in r.past_conditions)


def test_regeneration_command_reproduces_the_committed_bytes(tmp_path):
    write_sample(SAMPLE_DIR / "patients.csv", tmp_path)
    for path in SAMPLE_FHIR_DIR.glob("*.json"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


@settings(max_examples=8, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(timezone.utc)))
def test_rebased_sample_is_current_whenever_the_demo_runs(now):
    rec = rebase({"P001": _P001}, SAMPLE_ANCHOR, now)["P001"]
    vitals = rec.vitals_frame().query("category == 'vital-signs'")
    assert vitals["ts"].max() <= pd.Timestamp(now) and vitals["ts"].min() >= pd.Timestamp(now - timedelta(hours=24))
    view = build_bedside_view(rec, now, news2=news2_from_vitals, variant="doctor")
    assert {d.status for d in view.meds_due} == {"overdue", "due"}        # due in the next 2 h and overdue
    assert view.results_new and view.results_pending                      # labs final and pending
    assert view.news2 >= 7 and rec.birth_date == _P001.birth_date         # ages are not shifted


_P001 = load_records(SAMPLE_FHIR_DIR, SAMPLE_ANCHOR)["P001"]


def test_only_the_sample_folder_is_rebased(tmp_path):
    now = datetime(2031, 5, 2, 8, 0, tzinfo=timezone.utc)
    (tmp_path / "P002.json").write_bytes((SAMPLE_FHIR_DIR / "P002.json").read_bytes())
    as_is = load_records(tmp_path, now)["P002"]
    moved = load_sample(now)["P002"]
    assert moved.observations[-1].ts - as_is.observations[-1].ts == now - SAMPLE_ANCHOR
