"""AppTest for the foundation pages: they render for allowed roles with real data, refuse others."""
import pytest

from tests.apptest_support import app_as, page_alone, texts

PAGES = ["pages/ward_map.py", "pages/where.py", "pages/history.py", "pages/feed_status.py", "pages/floor_plans.py"]


def test_signed_out_sees_sign_in_only(app_db):
    at = app_as(None)
    assert not at.exception
    assert "Sign in to Wardsight" in texts(at)
    assert "decision support, not a medical device" in texts(at)


@pytest.mark.parametrize("page,role", [
    ("pages/ward_map.py", "nurse"), ("pages/where.py", "doctor"), ("pages/history.py", "charge_nurse"),
    ("pages/feed_status.py", "facilities"), ("pages/floor_plans.py", "admin")],
    ids=["map-nurse", "where-doctor", "history-charge", "feed-facilities", "plans-admin"])
def test_page_renders_for_allowed_role(app_db, page, role):
    at = app_as(role, page)
    assert not at.exception, at.exception
    assert "do not have access" not in texts(at)


@pytest.mark.parametrize("page,role", [
    ("pages/ward_map.py", "admin"), ("pages/feed_status.py", "nurse"), ("pages/floor_plans.py", "doctor")],
    ids=["map-admin", "feed-nurse", "plans-doctor"])
# the refused page is not in the role's navigation; it must also refuse when opened directly
def test_page_refuses_other_roles_even_by_url(app_db, page, role):
    at = page_alone(page, role)
    assert "You do not have access to this page." in texts(at)


def test_map_shows_markers_of_every_kind_and_freshness(app_db):
    at = app_as("nurse", "pages/ward_map.py")
    assert not at.exception
    assert "updated" in texts(at) and "present" in texts(at)
    chart = at.get("plotly_chart")[0]
    import json
    fig = json.loads(chart.proto.spec)
    names = {t.get("name") for t in fig["data"] if t.get("type") == "scattergl"}
    assert {"Nurse", "Patient", "Infusion pump"} <= names


def test_where_search_and_nearest_device(app_db):
    at = app_as("nurse", "pages/where.py")
    at.text_input[0].input("pump").run()
    assert not at.exception
    df = at.dataframe[0].value
    assert len(df) > 0 and df["name"].str.contains("Pump").all()
    assert "Distance is walking (via corridors)" in texts(at) or "No available infusion pump" in texts(at)


def test_history_answers_where_at_a_time(app_db):
    at = app_as("charge_nurse", "pages/history.py")
    assert not at.exception
    assert "At " in texts(at)


def test_history_withholds_staff_trails_and_patient_names_by_role(app_db):
    from tests.helpers import sample_site
    site = sample_site()
    at = app_as("manager", "pages/history.py")
    options = at.selectbox[0].options
    staff_names = set(site.entities.loc[site.entities["kind"] == "staff", "name"])
    full_patient = set(site.patients["given"] + " " + site.patients["family"])
    assert not any(o.split(" · ")[0] in staff_names for o in options), "no individual staff trails"
    assert not any(o.split(" · ")[0] in full_patient for o in options), "managers see initials, not names"
    assert "Staff movement history is not shown" in texts(at)
    nurse = app_as("nurse", "pages/history.py")
    assert any(o.split(" · ")[0] in full_patient for o in nurse.selectbox[0].options)
