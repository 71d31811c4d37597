"""core.sample_fhir: generated bundles round-trip through core.fhir.load with the promised content."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from core.errors import InvalidInput
from core.fhir import load_with_report
from core.sample_fhir import write_bundles

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
PATIENTS = [{"patient_id": f"P{i:03d}", "mrn": f"MRN{4100000 + i}", "given": g, "family": f, "birth_date": bd,
             "sex": s, "bed_id": f"WA-S{i}-1", "ward_id": "WA", "fall_risk": fr}
            for i, (g, f, bd, s, fr) in enumerate([("Jon", "Novak", "1931-04-08", "male", "False"),
                                                   ("Zoe", "Gill", "1953-02-05", "female", "True"),
                                                   ("Ada", "Kerr", "1990-12-31", "female", "False"),
                                                   ("Ben", "Ota", "1944-07-01", "male", "False"),
                                                   ("Cy", "Moss", "1975-03-15", "male", "True"),
                                                   ("Di", "Ray", "2001-09-09", "female", "False")], start=1)]


def news2_scale1(rr, spo2, sbp, pulse, temp, on_o2):
    """Test oracle: RCP NEWS2 Chart 1 scale 1 (standards.md 1.1), consciousness Alert."""
    def band(x, edges, scores):
        for edge, score in zip(edges, scores):
            if x <= edge:
                return score
        return scores[-1]
    return (band(rr, [8, 11, 20, 24], [3, 1, 0, 2, 3]) + band(spo2, [91, 93, 95], [3, 2, 1, 0])
            + (2 if on_o2 else 0) + band(sbp, [90, 100, 110, 219], [3, 2, 1, 0, 3])
            + band(pulse, [40, 50, 90, 110, 130], [3, 1, 0, 1, 2, 3]) + band(temp, [35.0, 36.0, 38.0, 39.0], [3, 1, 0, 1, 2]))


@pytest.mark.parametrize("inputs,total", [((16, 97, 120, 70, 37.0, False), 0), ((25, 93, 100, 130, 38.5, False), 10),
                                          ((21, 95, 110, 91, 38.1, False), 6), ((16, 96, 120, 70, 37.0, True), 2)],
                         ids=["all-normal", "openeobs-high", "just-over-edges", "on-o2"])
def test_oracle_matches_standards_vectors(inputs, total):
    assert news2_scale1(*inputs) == total          # hand-computed vectors, standards.md 1.2


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("fhir")
    paths = write_bundles(PATIENTS, out, NOW, seed=11)
    records, report = load_with_report(out)
    return out, paths, records, report


def test_round_trip_identity_and_bed(generated):
    _, paths, records, report = generated
    assert [p.name for p in paths] == [f"{p['patient_id']}.json" for p in PATIENTS]
    assert report.errors == [] and report.skipped == {}
    assert set(records) == {p["patient_id"] for p in PATIENTS}
    for p in PATIENTS:
        rec = records[p["patient_id"]]
        assert (rec.mrn, rec.given, rec.family, rec.sex, rec.birth_date.isoformat()) == \
               (p["mrn"], p["given"], p["family"], p["sex"], p["birth_date"])
        assert rec.bed_id() == p["bed_id"] and rec.current_encounter().class_code == "IMP"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = [p.read_bytes() for p in write_bundles(PATIENTS[:2], tmp_path / "a", NOW, seed=3)]
    b = [p.read_bytes() for p in write_bundles(PATIENTS[:2], tmp_path / "b", NOW, seed=3)]
    c = [p.read_bytes() for p in write_bundles(PATIENTS[:2], tmp_path / "c", NOW, seed=4)]
    assert a == b and a != c


def test_allergy_mix(generated):
    records = generated[2]
    by_index = [records[p["patient_id"]].allergies for p in PATIENTS]
    assert by_index[1] == () and by_index[4] == ()                       # every third patient has none
    assert any(a.high_risk for a in by_index[0]) and any(a.high_risk for a in by_index[3])
    assert all(not a.high_risk for a in by_index[2] + by_index[5]) and by_index[2]


def test_medications_due_soon_and_stopped_exist(generated):
    records = generated[2]
    for rec in records.values():
        scheduled = [m for m in rec.medications if not m.as_needed]
        assert scheduled and all(m.due_between(NOW, NOW + timedelta(hours=3)) for m in scheduled)
        assert any(m.as_needed for m in rec.medications)
        given = {a.request_id for a in rec.administrations}
        assert given <= {m.id for m in rec.medications}
        assert all(a.effective <= NOW for a in rec.administrations)
    assert any(rec.medication_history for rec in records.values())


def test_first_patient_misses_a_dose(generated):
    rec = generated[2]["P001"]
    missed = 0
    for m in rec.medications:
        given = sorted(a.effective for a in rec.administrations if a.request_id == m.id)
        for due in m.due_between(NOW - timedelta(hours=24), NOW - timedelta(minutes=45)):
            missed += not any(abs((g - due).total_seconds()) < 3600 for g in given)
    assert missed >= 1


def test_vitals_last_24h_and_first_patient_deteriorates(generated):
    records = generated[2]
    for rec in records.values():
        frame = rec.vitals_frame()
        vitals = frame[frame["category"] == "vital-signs"]
        assert vitals["ts"].between(NOW - timedelta(hours=24), NOW).all()
        assert {"resp_rate_per_min", "spo2_pct", "sbp_mmhg", "pulse_per_min", "temp_c", "consciousness"} <= set(vitals["name"])
    wide = records["P001"].vitals_frame().pivot_table(index="ts", columns="name", values="value")
    scores = [news2_scale1(r["resp_rate_per_min"], r["spo2_pct"], r["sbp_mmhg"], r["pulse_per_min"], r["temp_c"],
                           not pd.isna(r["inspired_o2_pct"]))
              for _, r in wide.iterrows()]
    assert scores[0] <= 1 and scores[-1] >= 7 and len(scores) >= 9


def test_results_recent_and_pending(generated):
    records = generated[2]
    results = [r for rec in records.values() for r in rec.results]
    assert all(r.status == "final" and r.issued <= NOW for r in results)
    assert any(NOW - r.issued < timedelta(hours=6) for r in results)
    assert len(records["P001"].pending_orders) == 2
    flagged = {pid for pid, rec in records.items() if any(f.code == "129839007" for f in rec.flags)}
    assert flagged == {"P001", "P002", "P005"}              # fall_risk column, plus the deteriorating patient


@pytest.mark.parametrize("bad", [{"mrn": ""}, {"bed_id": None}], ids=["no-mrn", "no-bed"])
def test_bad_rows_are_refused(tmp_path, bad):
    with pytest.raises(InvalidInput):
        write_bundles([{**PATIENTS[0], **bad}], tmp_path, NOW, seed=1)


def test_naive_now_refused(tmp_path):
    with pytest.raises(ValueError):
        write_bundles(PATIENTS[:1], tmp_path, NOW.replace(tzinfo=None), seed=1)
