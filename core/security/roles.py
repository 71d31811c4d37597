"""Who may open which page and do what — written as data so the README table, the page guards and
the tests all read the same matrix. Defaults follow the role sketch of standards §6.3 [E] and HIPAA
"minimum necessary" (45 CFR 164.502(b), 164.514(d) [R]): patient identity and records only to
clinical roles; managers get operational aggregates, not individual staff trails.

Role-level permission is necessary, not sufficient: patient-level scoping (assigned patients, care
team, break-the-glass grants) is applied on top of it by the repository / page.
"""
from __future__ import annotations

from enum import Enum

from core.errors import AccessDenied, InvalidInput


class Role(str, Enum):
    NURSE = "nurse"
    DOCTOR = "doctor"
    CHARGE_NURSE = "charge_nurse"
    PHARMACIST = "pharmacist"
    FACILITIES = "facilities"      # facilities / biomed / waste officer
    MANAGER = "manager"            # ward / operations manager
    ADMIN = "admin"                # security & user administrator
    KIOSK = "kiosk"                # pseudo-role: unauthenticated ward screen


N, D, C, P, F, M, A, K = (Role.NURSE, Role.DOCTOR, Role.CHARGE_NURSE, Role.PHARMACIST, Role.FACILITIES,
                          Role.MANAGER, Role.ADMIN, Role.KIOSK)
STAFF_ROLES = (N, D, C, P, F, M, A)
ALL_ROLES = STAFF_ROLES + (K,)

# page -> (title, roles that may open it)
PAGES: dict[str, tuple[str, frozenset[Role]]] = {
    "ward_map":        ("Ward map", frozenset({N, D, C, P, F, M})),
    "where":           ("Where is ...", frozenset({N, D, C, P, F, M})),
    "history":         ("Location history", frozenset({N, D, C, P, F, M})),
    "feed_status":     ("Feed status", frozenset({C, F, M, A})),
    "ward_screen":     ("Ward screen", frozenset(ALL_ROLES)),            # public: initials + bed only
    "alarms":          ("Alarm inbox", frozenset({N, D, C, P, F, M})),
    "bedside":         ("Bedside context", frozenset({N, D, C})),
    "workstation":     ("Nurse workstation", frozenset({N, D, C})),
    "operations":      ("Operations", frozenset({C, P, F, M})),
    "contact_tracing": ("Contact tracing", frozenset({D, C, M})),
    "infrastructure":  ("Readers & infrastructure", frozenset({F, A})),
    "admin_users":     ("Users", frozenset({A})),
    "audit_viewer":    ("Audit log", frozenset({M, A})),
    "care_team":       ("Care team", frozenset({N, D, C, M})),
    "about_me":        ("What Wardsight knows about me", frozenset(STAFF_ROLES)),
    "floor_plans":     ("Floor plans", frozenset({F, M, A})),
    "drug_storage":    ("Drug storage", frozenset({N, C, P, F, M})),
    "vitals":          ("Vital signs & NEWS2", frozenset({N, D, C})),
    "waste":           ("Waste disposal", frozenset({N, C, P, F, M})),
}

# permission -> (meaning, roles that hold it)
PERMISSIONS: dict[str, tuple[str, frozenset[Role]]] = {
    "see_patient_identity": ("full patient name (others see bed + initials)", frozenset({N, D, C})),
    "see_patient_record":   ("vitals, NEWS2, clinical context", frozenset({N, D, C})),
    "ack_vitals_alarm":     ("acknowledge / escalate vitals & NEWS2 alarms", frozenset({N, D, C})),
    "ack_storage_alarm":    ("acknowledge drug-storage excursions", frozenset({C, P})),
    "ack_waste_alarm":      ("acknowledge / collect waste alarms", frozenset({C, P, F})),
    "break_glass":          ("emergency access to a patient outside one's list (audited, time-limited)",
                             frozenset({N, D, C})),
    "see_staff_trails":     ("individual staff location history (aggregates are open to managers)",
                             frozenset()),  # nobody by default: granted per investigation, audited
    "export":               ("download data extracts", frozenset({C, M, A})),
    "change_settings":      ("alarm limits, storage profiles, reader / zone configuration",
                             frozenset({C, F, M, A})),
    "manage_users":         ("create / disable accounts, reset second factor", frozenset({A})),
    "view_audit":           ("read the audit log", frozenset({M, A})),
    "record_optout":        ("record a patient's tracking opt-out", frozenset({N, D, C})),
}


def as_role(role: Role | str) -> Role | None:
    """The Role for `role`, or None for an unknown one (an unknown role is denied everything)."""
    try:
        return Role(role)
    except ValueError:
        return None


def _permission(permission: str) -> frozenset[Role]:
    if permission not in PERMISSIONS:
        raise InvalidInput(f"unknown permission {permission!r}")
    return PERMISSIONS[permission][1]


def can(role: Role | str, permission: str) -> bool:
    """Whether `role` holds `permission` (unknown role: False; unknown permission: InvalidInput)."""
    return as_role(role) in _permission(permission)


def require(role: Role | str, permission: str) -> None:
    """Raise AccessDenied unless `role` holds `permission`."""
    if not can(role, permission):
        raise AccessDenied(f"role {str(getattr(role, 'value', role))!r} may not {permission}")


def can_view(role: Role | str, page: str) -> bool:
    if page not in PAGES:
        raise InvalidInput(f"unknown page {page!r}")
    return as_role(role) in PAGES[page][1]


def require_page(role: Role | str, page: str) -> None:
    if not can_view(role, page):
        raise AccessDenied(f"role {str(getattr(role, 'value', role))!r} may not open {PAGES[page][0]}")


def pages_for(role: Role | str) -> list[str]:
    """Page keys `role` may open, in menu order."""
    r = as_role(role)
    return [page for page, (_, roles) in PAGES.items() if r in roles]


def matrix_markdown() -> str:
    """The access matrix as two Markdown tables (pages, then permissions) for the README."""
    header = "| | " + " | ".join(r.value for r in ALL_ROLES) + " |"
    rule = "|---|" + "---|" * len(ALL_ROLES)

    def rows(table: dict[str, tuple[str, frozenset[Role]]]) -> list[str]:
        return [f"| `{key}` — {title} | " + " | ".join("✓" if r in roles else "–" for r in ALL_ROLES) + " |"
                for key, (title, roles) in table.items()]

    return "\n".join(["**Pages**", "", header, rule, *rows(PAGES), "",
                      "**Permissions**", "", header, rule, *rows(PERMISSIONS)]) + "\n"
