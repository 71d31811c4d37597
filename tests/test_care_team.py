"""core.care_team: the default split per ward shift, idempotent seeding, demo cover, audited changes
and the access decision it feeds (core.bedside.care_context)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from core import care_team as ct
from core.bedside import care_context
from core.errors import AccessDenied, InvalidInput
from core.security import audit
from core.storage.repository import Repository
from tests.helpers import sample_site

DAY = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)      # 09:00 London (GMT): day shift 07:00–19:30
NIGHT = datetime(2026, 11, 21, 23, 0, tzinfo=timezone.utc)   # 23:00: night shift 19:00–07:30
HANDOVER = datetime(2026, 11, 21, 7, 15, tzinfo=timezone.utc)
DEMO = ("S002", "S010", "S001")


@pytest.fixture
def repo():
    r = Repository.from_url("sqlite://")
    r.create_schema()
    r.load_site(sample_site())
    return r


@pytest.mark.parametrize("ward", ["WA", "WB", "WC"])
def test_default_split_covers_each_patient_once_by_a_nurse_and_by_every_doctor(ward):
    site = sample_site()
    on = site.shifts(DAY, 0, 0).query("ward_id == @ward and start <= @DAY and end > @DAY")["staff_id"].tolist()
    plan = ct.default_assignments(site, ward, on)
    ward_patients = set(site.patients.query("ward_id == @ward")["patient_id"])
    nursing = plan[plan["staff_role"].isin(ct.NURSING_ROLES)]
    assert sorted(nursing["patient_id"]) == sorted(ward_patients)            # each patient exactly once
    sizes = nursing.groupby("staff_id").size()
    assert sizes.max() - sizes.min() <= 1                                    # a fair split
    doctors = plan[plan["staff_role"] == "doctor"]
    assert doctors.groupby("staff_id")["patient_id"].apply(set).map(lambda s: s == ward_patients).all()
    beds = site.beds.reset_index().set_index("bed_id")["index"]
    by_bed = site.patients.set_index("patient_id")["bed_id"]
    for _, mine in nursing.groupby("staff_id"):                              # contiguous runs of beds
        order = sorted(beds[by_bed[mine["patient_id"]]].tolist())
        ward_order = sorted(beds[site.patients.query("ward_id == @ward")["bed_id"]].tolist())
        i = ward_order.index(order[0])
        assert ward_order[i:i + len(order)] == order


def test_seeding_is_idempotent_and_per_running_shift(repo):
    site = sample_site()
    added = ct.ensure_seeded(repo, site, DAY)
    assert added > 0 and ct.ensure_seeded(repo, site, DAY) == 0
    live = ct.live_assignments(repo, DAY)
    assert set(live["staff_id"]) <= set(site.shifts(DAY).query("start <= @DAY and end > @DAY")["staff_id"])
    assert ct.live_assignments(repo, NIGHT).empty                          # night shift not seeded yet
    assert ct.ensure_seeded(repo, site, NIGHT) > 0
    assert set(ct.live_assignments(repo, NIGHT)["staff_id"]) & {"S002", "S010", "S001"} == set()


def test_handover_has_both_shifts_live(repo):
    site = sample_site()
    ct.ensure_seeded(repo, site, HANDOVER)
    live = ct.live_assignments(repo, HANDOVER, patient_id="P001")
    assert {"S010", "S011"} <= set(live["staff_id"])                        # day and night doctor of ward A


@pytest.mark.parametrize("now,source", [(DAY, "default"), (NIGHT, "demo_cover")], ids=["on-shift", "off-shift"])
def test_demo_accounts_have_patients_at_any_hour(repo, now, source):
    site = sample_site()
    ct.ensure_seeded(repo, site, now, demo_staff=DEMO)
    for staff in DEMO:
        mine = ct.my_patients(repo, site, staff, now)
        assert len(mine) > 0 and set(mine["source"]) == {source}
        assert mine["bed_id"].notna().all()


def test_changes_are_checked_and_audited(repo):
    site = sample_site()
    ct.ensure_seeded(repo, site, DAY)
    shift = ct.ward_shifts(site, "WA", DAY, ahead=0).iloc[0]
    start, end = shift["start"].to_pydatetime(), shift["end"].to_pydatetime()
    kw = dict(ward_id="WA", shift_start=start, shift_end=end, now=DAY)
    with pytest.raises(AccessDenied):
        ct.set_nurse(repo, site, patient_id="P001", nurse_id="S004", by="nurse", by_role="nurse", **kw)
    with pytest.raises(InvalidInput, match="not a nurse or doctor"):
        ct.assign(repo, site, staff_id="S034", patient_id="P001", by="charge", by_role="charge_nurse", **kw)
    assert ct.set_nurse(repo, site, patient_id="P001", nurse_id="S004", by="charge", by_role="charge_nurse",
                        reason="skill mix", **kw)
    board = ct.board(repo, site, "WA", start).set_index("patient_id")
    assert board.at["P001", "nurse"] == "S004"
    assert "P001" not in set(ct.my_patients(repo, site, "S002", DAY)["patient_id"])
    rows = audit.entries(repo.engine, object_type="care_assignment", patient_id="P001")
    assert sorted(rows["action"]) == ["care_assignment_added", "care_assignment_removed"]
    assert set(rows["actor"]) == {"charge"} and set(rows["reason"]) == {"skill mix"}
    assert not ct.set_nurse(repo, site, patient_id="P001", nurse_id="S004", by="charge", by_role="charge_nurse", **kw)
    assert ct.ensure_seeded(repo, site, DAY) == 0            # a changed shift is not re-seeded over the change


def test_assignments_drive_the_care_decision(repo):
    site = sample_site()
    ct.ensure_seeded(repo, site, DAY)
    live = ct.live_assignments(repo, DAY, staff_id="S010")
    assert care_context("S010", "P001", live, DAY).access == "full"
    wb = site.patients.query("ward_id == 'WB'")["patient_id"].iloc[0]
    decision = care_context("S010", wb, ct.live_assignments(repo, DAY, staff_id="S010"), DAY)
    assert decision.access == "location_only" and decision.break_glass_required
    later = DAY + timedelta(hours=11)                      # 20:00: the day shift has ended
    assert care_context("S010", "P001", ct.live_assignments(repo, later, staff_id="S010"), later).access == "location_only"


def test_shift_windows_and_labels():
    site = sample_site()
    w = ct.ward_shifts(site, "WA", DAY, ahead=1)
    assert list(w["pattern"]) == ["day", "night"]
    assert ct.shift_label(w.at[0, "start"], w.at[0, "end"], site.tz) == "Sat 21 Nov 07:00–19:30"
    staff = ct.shift_staff(site, "WA", w.at[0, "start"].to_pydatetime())
    assert set(staff["staff_id"]) == {"S001", "S002", "S004", "S006", "S010"}
