"""AppTest for the bedside tablet, the shared workstation and the care-team board, driven by reads
that go through the real pipeline into the page-test database."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core import bedside_service as bs
from core import care_team as ct
from core.config import Settings
from core.security import audit
from core.services import build_pipeline
from core.storage.repository import Repository
from tests.apptest_support import app_as, page_alone, texts
from tests.helpers import sample_site


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def pipe(app_db):
    """A second feed process writing the app's database (the app itself runs with the feed off)."""
    return build_pipeline(sample_site(), Repository.from_url(app_db), Settings.from_env())


@pytest.fixture(scope="module")
def repo(app_db):
    return Repository.from_url(app_db)


def _views(repo, username: str, patient_id: str):
    rows = audit.entries(repo.engine, actor=username, patient_id=patient_id)
    return rows[rows["action"] == "patient_record_view"]


def _first_patient(repo, staff_id: str):
    mine = ct.my_patients(repo, sample_site(), staff_id, now())
    return mine.iloc[0]


def test_doctor_arriving_at_a_bed_gets_the_patient_once_audited_and_walking_away_returns(app_db, pipe, repo):
    at = app_as("doctor", "pages/bedside.py", staff_id="S010")
    assert not at.exception and "My patients" in texts(at)
    me = at.session_state["ws_session"].username
    patient = _first_patient(repo, "S010")
    assert bs.arrive(pipe, "S010", patient.bed_id, now()) is not None
    at.run()                                             # the fragment's next tick
    shown = texts(at)
    assert not at.exception and patient["name"] in shown and f"bed **{patient.bed_id}**" in shown
    assert "NEWS2" in shown and "Medications: next 2 h and overdue" in shown and "Nursing tasks" not in shown
    at.run()
    at.run()                                             # still at the bed: no second audit row
    views = _views(repo, me, patient.patient_id)
    assert len(views) == 1 and views["reason"].iloc[0] == "at the bedside, patient in my care"
    bs.leave(pipe, "S010", now())
    at.run()
    assert "My patients" in texts(at) and patient["name"] not in texts(at).split("My patients")[0]


def test_first_sample_patient_shows_the_high_risk_allergy_and_overdue_dose(app_db, pipe, repo):
    at = app_as("doctor", "pages/bedside.py", staff_id="S010")
    bs.arrive(pipe, "S010", "WA-S1-1", now())
    at.run()
    shown = texts(at)
    assert "ALLERGY — HIGH RISK:** Penicillin V" in shown and "Pending" in shown
    assert "OVERDUE" in shown or "missed yesterday" in shown                  # P001's missed dose
    bs.leave(pipe, "S010", now())


def test_nurse_variant_puts_nursing_tasks_at_the_bed(app_db, pipe, repo):
    at = app_as("nurse", "pages/bedside.py", staff_id="S002")
    patient = _first_patient(repo, "S002")
    bs.arrive(pipe, "S002", patient.bed_id, now())
    at.run()
    assert not at.exception and "Nursing tasks" in texts(at) and patient["name"] in texts(at)
    bs.leave(pipe, "S002", now())


def test_patient_not_in_care_is_location_only_until_break_glass_with_a_reason(app_db, pipe, repo):
    site = sample_site()
    other = site.patients.query("ward_id == 'WC'").iloc[0]          # the ward-A doctor does not cover ward C
    at = app_as("doctor", "pages/bedside.py", staff_id="S010")
    me = at.session_state["ws_session"].username
    bs.arrive(pipe, "S010", other.bed_id, now())
    at.run()
    name = f"{other.given} {other.family}"
    assert "not in your care" in texts(at) and name not in texts(at)
    submit = next(b for b in at.button if b.label.startswith("Break the glass"))
    submit.click().run()                                             # no reason given
    assert "Not opened" in texts(at) and name not in texts(at)
    assert audit.entries(repo.engine, actor=me, patient_id=other.patient_id).empty
    at.text_input(key=f"btg_reason_{other.patient_id}").input("patient deteriorating, assigned doctor in theatre")
    next(b for b in at.button if b.label.startswith("Break the glass")).click().run()
    at.run()
    assert name in texts(at) and "emergency access" in texts(at)
    rows = audit.entries(repo.engine, actor=me, patient_id=other.patient_id)
    assert set(rows["action"]) == {"break_glass", "patient_record_view"}
    assert rows.set_index("action").at["patient_record_view", "reason"].startswith("break-glass: patient deteriorating")
    bs.leave(pipe, "S010", now())
    at.run()
    assert "My patients" in texts(at)


def test_off_shift_clinician_is_told_plainly(app_db):
    site = sample_site()
    on = site.on_duty(now())
    off = [s for s in ("S010", "S011") if not on[s]][0]              # one of the ward-A doctors is off now
    at = app_as("doctor", "pages/bedside.py", staff_id=off)
    assert not at.exception
    assert "Your badge is not being seen; you may be off shift" in texts(at)


def test_workstation_lists_only_my_patients_and_audits_the_views(app_db, repo):
    at = app_as("doctor", "pages/workstation.py", staff_id="S010")
    assert not at.exception
    table = at.dataframe[0].value
    mine = ct.my_patients(repo, sample_site(), "S010", now())
    assert sorted(table["bed"]) == sorted(mine["bed_id"]) and table["bed"].str.startswith("WA-").all()
    assert "Today's schedule" in texts(at) and len(at.dataframe[1].value) > 0
    me = at.session_state["ws_session"].username
    assert len(audit.entries(repo.engine, actor=me)) >= len(mine)
    at.selectbox(key="ws_open_patient").select(mine.patient_id.iloc[0]).run()
    assert mine["name"].iloc[0] in texts(at)
    opened = _views(repo, me, mine.patient_id.iloc[0])
    assert "opened from my patients (workstation)" in set(opened["reason"])


def test_care_team_board_editable_by_the_charge_nurse_only(app_db, repo):
    viewer = app_as("nurse", "pages/care_team.py", staff_id="S002")
    assert not viewer.exception and "Read only" in texts(viewer)
    at = app_as("charge_nurse", "pages/care_team.py", staff_id="S001")
    assert not at.exception and "Read only" not in texts(at)
    me = at.session_state["ws_session"].username
    form_pid = at.selectbox[3].value
    at.selectbox[2].select("S010")
    next(b for b in at.button if b.label == "Remove").click().run()
    assert not at.exception
    rows = audit.entries(repo.engine, actor=me, object_type="care_assignment")
    assert list(rows["action"]) == ["care_assignment_removed"] and rows["patient_id"].iloc[0] == form_pid
    assert form_pid not in set(ct.my_patients(repo, sample_site(), "S010", now())["patient_id"])
    next(b for b in at.button if b.label == "Assign").click().run()           # and back (other tests use S010)
    assert form_pid in set(ct.my_patients(repo, sample_site(), "S010", now())["patient_id"])


@pytest.mark.parametrize("page", ["pages/bedside.py", "pages/workstation.py"], ids=["bedside", "workstation"])
def test_pages_refuse_other_roles_and_unlinked_accounts(app_db, page):
    assert "You do not have access to this page." in texts(page_alone(page, "pharmacist"))
    at = page_alone(page, "doctor")                                  # an account without a staff badge
    assert not at.exception and "not linked" in texts(at)


def test_demo_control_walks_my_badge_to_a_bed_through_the_pages_own_pipeline(app_db, repo):
    import time
    at = app_as("charge_nurse", "pages/bedside.py", staff_id="S001")
    bed = at.selectbox(key="demo_bed").value
    patient = sample_site().patients.set_index("bed_id").loc[bed]
    next(b for b in at.button if b.label.startswith("Simulate my badge")).click().run()
    deadline = time.monotonic() + 20
    while f"{patient.given} {patient.family}" not in texts(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()                                    # each run is a fragment tick: the page pumps its pipeline
    assert f"{patient.given} {patient.family}" in texts(at) and "Nursing tasks" in texts(at)
    next(b for b in at.button if b.label == "Walk away").click().run()
    deadline = time.monotonic() + 20
    while "My patients" not in texts(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert "My patients" in texts(at)


def _tick_until(at, text: str, seconds: float = 20) -> None:
    import time
    deadline = time.monotonic() + seconds
    while text not in texts(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()


def test_demo_control_reaches_break_glass_at_a_bed_not_in_my_care(app_db, repo):
    at = app_as("doctor", "pages/bedside.py", staff_id="S010")
    me = at.session_state["ws_session"].username
    mine = set(ct.my_patients(repo, sample_site(), "S010", now())["bed_id"])
    options = at.selectbox(key="demo_bed").options
    assert options[0].startswith("★") and any("not my patient" in o for o in options)
    bed = next(b for b in sample_site().beds["bed_id"] if b not in mine
               and b in set(sample_site().patients["bed_id"]))
    other = sample_site().patients.set_index("bed_id").loc[bed]
    at.selectbox(key="demo_bed").select(bed).run()
    next(b for b in at.button if b.label.startswith("Simulate my badge")).click().run()
    walk = next(b for b in at.button if b.label == "Walk away")
    assert not walk.disabled                                   # consistent right after the action
    _tick_until(at, "not in your care")
    name = f"{other.given} {other.family}"
    assert "not in your care" in texts(at) and name not in texts(at)
    for reason in ("", "urgent"):                             # empty and too short are refused, plainly
        at.text_input(key=f"btg_reason_{other.patient_id}").input(reason)
        next(b for b in at.button if b.label.startswith("Break the glass")).click().run()
        assert "Not opened: break-the-glass needs a reason of at least" in texts(at) and name not in texts(at)
    assert audit.entries(repo.engine, actor=me, patient_id=other.patient_id).empty
    at.text_input(key=f"btg_reason_{other.patient_id}").input("cardiac arrest call, covering the bay")
    next(b for b in at.button if b.label.startswith("Break the glass")).click().run()
    at.run()
    assert name in texts(at) and "emergency access" in texts(at)
    rows = audit.entries(repo.engine, actor=me, patient_id=other.patient_id).set_index("action")
    assert rows.at["break_glass", "reason"] == "cardiac arrest call, covering the bay"
    assert rows.at["patient_record_view", "reason"] == "break-glass: cardiac arrest call, covering the bay"
    next(b for b in at.button if b.label == "Walk away").click().run()
    assert next(b for b in at.button if b.label == "Walk away").disabled
    _tick_until(at, "My patients")
    assert "My patients" in texts(at)
