"""Every page × every role, each page run on its own as a URL opened directly would be: allowed roles
see the page without an exception or a refusal, refused roles see only the refusal (kiosk = not
signed in). The matrix under test is core.security.roles.PAGES — the same data the README prints."""
import pytest
from streamlit.testing.v1 import AppTest

from core.security.roles import ALL_ROLES, PAGES as ACCESS, Role, can_view
from tests.apptest_support import session_for, texts
from ui.nav import PAGES, ROOT

EXISTING = [p for p in PAGES if (ROOT / p.path).exists()]
ROLES = [r.value for r in ALL_ROLES]
REFUSED = "You do not have access to this page."
SIGN_IN = "Please sign in to open this page."
BADGES = {"nurse": "S002", "doctor": "S010", "charge_nurse": "S001"}
_SESSIONS: dict[str, object] = {}


def signed_in(role: str):
    """One real account and session per role, reused by every page (sign-in is the slow part, and a
    TOTP code cannot be used twice by one account within its 30 s step)."""
    if role not in _SESSIONS:
        _SESSIONS[role] = session_for(role, BADGES.get(role))
    return _SESSIONS[role]


def open_page(path: str, role: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=30)
    if role != Role.KIOSK.value:
        at.session_state["ws_session"] = signed_in(role)
    return at.run()


def test_every_registered_page_is_in_the_access_matrix():
    assert {p.key for p in PAGES} <= set(ACCESS)
    assert len(EXISTING) >= 8          # the foundation pages plus this feature's three


@pytest.mark.parametrize("page,role", [(p, r) for p in EXISTING for r in ROLES],
                         ids=[f"{p.key}-{r}" for p in EXISTING for r in ROLES])
def test_page_role(app_db, page, role):
    at = open_page(page.path, role)
    shown = texts(at)
    if can_view(role, page.key):
        assert not at.exception, at.exception
        assert REFUSED not in shown and SIGN_IN not in shown
        assert len(at.title) >= 1, "an allowed page shows its title"
    else:
        assert (SIGN_IN if role == Role.KIOSK.value else REFUSED) in shown
        assert not at.title and not at.dataframe and not at.get("plotly_chart"), "nothing rendered past the guard"
