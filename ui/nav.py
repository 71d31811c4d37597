"""The page registry: key (as in core.security.roles.PAGES) → file, title, icon, section. A page is
offered when its file exists and the signed-in role may open it (decided in core, not here)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    key: str
    path: str
    title: str
    icon: str
    section: str


PAGES = [
    PageSpec("ward_map", "pages/ward_map.py", "Live floor map", ":material/map:", "Live"),
    PageSpec("where", "pages/where.py", "Who & what is where", ":material/search:", "Live"),
    PageSpec("history", "pages/history.py", "History", ":material/history:", "Live"),
    PageSpec("ward_screen", "pages/ward_screen.py", "Ward screen", ":material/tv:", "Live"),
    PageSpec("alarms", "pages/alarms.py", "Alarm inbox", ":material/notifications:", "Alarms"),
    PageSpec("drug_storage", "pages/drug_storage.py", "Drug storage", ":material/kitchen:", "Alarms"),
    PageSpec("vitals", "pages/vitals.py", "Vital signs & NEWS2", ":material/monitor_heart:", "Alarms"),
    PageSpec("waste", "pages/waste.py", "Waste disposal", ":material/delete:", "Alarms"),
    PageSpec("bedside", "pages/bedside.py", "At the bedside", ":material/bed:", "Patients"),
    PageSpec("workstation", "pages/workstation.py", "My patients", ":material/assignment_ind:", "Patients"),
    PageSpec("care_team", "pages/care_team.py", "Care team", ":material/groups:", "Patients"),
    PageSpec("operations", "pages/operations.py", "Operations", ":material/monitoring:", "Management"),
    PageSpec("contact_tracing", "pages/contact_tracing.py", "Contact tracing", ":material/hub:", "Management"),
    PageSpec("feed_status", "pages/feed_status.py", "Feed status", ":material/sensors:", "System"),
    PageSpec("infrastructure", "pages/infrastructure.py", "Readers & infrastructure", ":material/router:", "System"),
    PageSpec("floor_plans", "pages/floor_plans.py", "Floor plans", ":material/layers:", "System"),
    PageSpec("admin_users", "pages/admin_users.py", "Users", ":material/manage_accounts:", "Admin"),
    PageSpec("audit_viewer", "pages/audit_viewer.py", "Audit log", ":material/policy:", "Admin"),
    PageSpec("about_me", "pages/about_me.py", "What Wardsight knows about me", ":material/person:", "Me"),
]
BY_KEY = {p.key: p for p in PAGES}


def available(keys: list[str]) -> list[PageSpec]:
    """Specs for the given page keys whose files exist, in registry order."""
    allowed = set(keys)
    return [p for p in PAGES if p.key in allowed and (ROOT / p.path).exists()]
