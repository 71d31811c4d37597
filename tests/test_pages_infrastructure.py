"""Readers & infrastructure page: renders for facilities and admin with real pipeline data, refuses
other roles even by URL, and shows what the health module computes."""
import pytest

import pandas as pd
from core import health
from core.config import Settings
from core.storage.repository import Repository
from tests.apptest_support import app_as, page_alone, texts
from tests.helpers import sample_site

PAGE = "pages/infrastructure.py"


@pytest.mark.parametrize("role", ["facilities", "admin"], ids=["facilities", "admin"])
def test_page_renders_for_allowed_roles(app_db, role):
    at = app_as(role, PAGE)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Readers & infrastructure" in shown and "updated" in shown
    assert "Silent antennas" in shown and "Reader clocks" in shown


@pytest.mark.parametrize("role", ["nurse", "doctor", "manager"], ids=["nurse", "doctor", "manager"])
def test_page_refuses_other_roles_even_by_url(app_db, role):
    assert "You do not have access to this page." in texts(page_alone(PAGE, role))


def test_page_counts_match_the_health_report(app_db):
    """The silent-antenna metric is the health report's count for the same store (the page-test
    database was filled by the simulator a moment ago; it has readers heard and never heard)."""
    at = app_as("facilities", PAGE)
    metric = next(m for m in at.metric if m.label == "Silent antennas")
    cfg = Settings.from_env()
    from datetime import datetime, timezone
    rep = health.silent_readers(Repository.from_url(app_db), sample_site(), datetime.now(timezone.utc), cfg.reader_silent_s)
    assert metric.value == f"{int(rep['silent'].sum())}/{len(rep)}"
    # at the time of the last read the feed had been heard by some antennas and not by others
    # (judged then, not now: on a slow machine every antenna is silent minutes later)
    heard_at = pd.to_datetime(rep["last_read_ms"].max(), unit="ms", utc=True).to_pydatetime()
    then = health.silent_readers(Repository.from_url(app_db), sample_site(), heard_at, cfg.reader_silent_s)
    heard_then = then[~then["never"]]
    assert len(heard_then) > 0 and int(heard_then["silent"].sum()) < len(heard_then)
    assert len(at.get("plotly_chart")) >= 1              # skew and rate charts from the simulated feed
