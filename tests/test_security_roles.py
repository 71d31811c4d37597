"""The access matrix: every page x role and permission x role against the policy written out here
independently (a change to roles.py that is not also made here fails, on purpose)."""
from __future__ import annotations

import pytest

from core.errors import AccessDenied, InvalidInput
from core.security import roles

ROLES = ["nurse", "doctor", "charge_nurse", "pharmacist", "facilities", "manager", "admin", "kiosk"]

# columns in ROLES order: 1 = allowed
PAGE_POLICY = """
ward_map         1 1 1 1 1 1 0 0
where            1 1 1 1 1 1 0 0
history          1 1 1 1 1 1 0 0
feed_status      0 0 1 0 1 1 1 0
ward_screen      1 1 1 1 1 1 1 1
alarms           1 1 1 1 1 1 0 0
bedside          1 1 1 0 0 0 0 0
workstation      1 1 1 0 0 0 0 0
operations       0 0 1 1 1 1 0 0
contact_tracing  0 1 1 0 0 1 0 0
infrastructure   0 0 0 0 1 0 1 0
admin_users      0 0 0 0 0 0 1 0
audit_viewer     0 0 0 0 0 1 1 0
care_team        1 1 1 0 0 1 0 0
about_me         1 1 1 1 1 1 1 0
floor_plans      0 0 0 0 1 1 1 0
drug_storage     1 0 1 1 1 1 0 0
vitals           1 1 1 0 0 0 0 0
waste            1 0 1 1 1 1 0 0
"""
PERMISSION_POLICY = """
see_patient_identity  1 1 1 0 0 0 0 0
see_patient_record    1 1 1 0 0 0 0 0
ack_vitals_alarm      1 1 1 0 0 0 0 0
ack_storage_alarm     0 0 1 1 0 0 0 0
ack_waste_alarm       0 0 1 1 1 0 0 0
break_glass           1 1 1 0 0 0 0 0
see_staff_trails      0 0 0 0 0 0 0 0
export                0 0 1 0 0 1 1 0
change_settings       0 0 1 0 1 1 1 0
manage_users          0 0 0 0 0 0 1 0
view_audit            0 0 0 0 0 1 1 0
record_optout         1 1 1 0 0 0 0 0
"""


def cases(policy: str):
    for line in policy.strip().splitlines():
        key, *flags = line.split()
        for role, flag in zip(ROLES, flags, strict=True):
            yield pytest.param(key, role, flag == "1", id=f"{key}-{role}")


def test_policy_tables_cover_every_page_and_permission():
    assert [l.split()[0] for l in PAGE_POLICY.strip().splitlines()] == list(roles.PAGES)
    assert [l.split()[0] for l in PERMISSION_POLICY.strip().splitlines()] == list(roles.PERMISSIONS)
    assert [r.value for r in roles.ALL_ROLES] == ROLES


@pytest.mark.parametrize("page, role, allowed", list(cases(PAGE_POLICY)))
def test_page_matrix(page, role, allowed):
    assert roles.can_view(role, page) is allowed
    assert (page in roles.pages_for(role)) is allowed
    if allowed:
        roles.require_page(role, page)
    else:
        with pytest.raises(AccessDenied):
            roles.require_page(role, page)


@pytest.mark.parametrize("permission, role, allowed", list(cases(PERMISSION_POLICY)))
def test_permission_matrix(permission, role, allowed):
    assert roles.can(role, permission) is allowed
    if allowed:
        roles.require(role, permission)
    else:
        with pytest.raises(AccessDenied, match=permission):
            roles.require(role, permission)


def test_unknown_role_denied_and_unknown_permission_is_an_error():
    assert not roles.can("janitor", "export") and roles.pages_for("janitor") == []
    with pytest.raises(AccessDenied):
        roles.require("janitor", "export")
    with pytest.raises(InvalidInput):
        roles.can("nurse", "launch_missiles")
    with pytest.raises(InvalidInput):
        roles.can_view("nurse", "no_such_page")


def test_kiosk_sees_only_the_ward_screen_and_holds_no_permission():
    assert roles.pages_for("kiosk") == ["ward_screen"]
    assert not any(roles.can("kiosk", p) for p in roles.PERMISSIONS)


def test_matrix_markdown_has_a_row_per_page_and_permission_and_a_column_per_role():
    md = roles.matrix_markdown()
    assert all(f"| {' | '.join(ROLES)} |" in line for line in md.splitlines() if line.startswith("| |"))
    for key in [*roles.PAGES, *roles.PERMISSIONS]:
        row = next(line for line in md.splitlines() if f"`{key}`" in line)
        assert row.count("✓") + row.count("–") == len(ROLES)
    bedside = next(line for line in md.splitlines() if "`bedside`" in line)
    assert bedside.split("|")[2:10] == [" ✓ ", " ✓ ", " ✓ ", " – ", " – ", " – ", " – ", " – "]
