"""Support for page tests with streamlit.testing.v1.AppTest.

One temporary SQLite database per test session, filled by the real simulator and pipeline; the app
reads it with WARDSIGHT_FEED=none (no background thread in tests). Users sign in for real: an
account per role is created with a known TOTP secret and a session is obtained through
AuthService, then placed where the app keeps it.
"""
from __future__ import annotations

import itertools
import os
from datetime import datetime, timezone
from pathlib import Path

from core.config import Settings
from core.security import totp
from core.security.auth import AuthService
from core.storage.repository import Repository
from tests.helpers import run_feed, sample_site

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PASSWORD = "page-test-password-1"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_counter = itertools.count(1)


def prepare_database(tmp_dir: Path, ticks: int = 40) -> str:
    """Create and fill the page-test database; point the app at it. Returns the URL."""
    url = f"sqlite:///{tmp_dir / 'pages.db'}"
    repo = Repository.from_url(url)
    repo.create_schema()
    site = sample_site()
    repo.load_site(site)
    now = datetime.now(timezone.utc)
    from datetime import timedelta
    run_feed(repo, site, ticks, start=now - timedelta(seconds=ticks), fault_rate=0.01)
    os.environ.update({"WARDSIGHT_DB_URL": url, "WARDSIGHT_FEED": "none", "WARDSIGHT_DEMO": "1"})
    return url


def session_for(role: str, staff_id: str | None = None):
    """A real signed-in session for a fresh account with `role`."""
    repo = Repository.from_url(Settings.from_env().db_url)
    svc = AuthService(repo.engine)
    now = datetime.now(timezone.utc)
    name = f"t{next(_counter)}_{role}"
    svc.create_user(name, PASSWORD, role, f"Test {role}", now=now, staff_id=staff_id, totp_secret=SECRET,
                    totp_enrolled=True)
    ticket = svc.begin_login(name, PASSWORD, now)
    return svc.finish_login(ticket, totp.code_at(SECRET, now), now)


def app_as(role: str | None, page: str | None = None, staff_id: str | None = None, timeout: float = 30):
    """An AppTest of app.py, signed in as `role` (None: not signed in), switched to `page`."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=timeout)
    if role is not None:
        at.session_state["ws_session"] = session_for(role, staff_id)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def page_alone(page: str, role: str | None, staff_id: str | None = None, timeout: float = 30):
    """Run one page file on its own (as a URL opened directly would), signed in as `role`."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(APP).parent / page), default_timeout=timeout)
    if role is not None:
        at.session_state["ws_session"] = session_for(role, staff_id)
    at.run()
    return at


def texts(at) -> str:
    """All visible text of an AppTest run, for assertions about what a person would read."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "metric", "text"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "") or ""))
    return "\n".join(parts)
