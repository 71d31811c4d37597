"""The ward screen is a kiosk page: it renders without sign-in and never shows a patient's full
name or MRN - not in any element, not in the map's plotly JSON (hover text included)."""
import json

import pytest

from core.alarms import service
from tests.apptest_support import app_as, page_alone, texts
from tests.helpers import sample_site


def _everything(at) -> str:
    """Every value the page sent: element values/labels, markdown bodies and plotly specs."""
    parts = [texts(at)]
    for el in at.get("plotly_chart"):
        parts.append(el.proto.spec)
    for kind in ("markdown", "caption", "selectbox", "title"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")))
            parts.append(str(getattr(el, "options", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("ward", ["WA", "WB", "WC"])
def test_kiosk_ward_screen_never_shows_names_or_mrns(app_db, ward):
    at = page_alone("pages/ward_screen.py", None)
    at.query_params["ward"] = ward
    at.run()
    assert not at.exception, at.exception
    blob = _everything(at)
    pts = sample_site().patients
    here = pts[pts["ward_id"] == ward]
    assert any(s in blob for s in here["short_name"])            # initials are there ...
    for given, family, mrn in zip(pts["given"], pts["family"], pts["mrn"]):
        assert f"{given} {family}" not in blob                    # ... full names and MRNs never
        assert mrn not in blob


def test_ward_screen_remembers_the_ward_in_the_url(app_db):
    at = page_alone("pages/ward_screen.py", None)
    at.query_params["ward"] = "WB"
    at.run()
    assert at.selectbox(key="ws_ward").value == "WB"
    at.selectbox(key="ws_ward").set_value("WC").run()
    assert at.query_params["ward"] == ["WC"] or at.query_params["ward"] == "WC"
    assert "Ward C" in texts(at)


def test_ward_screen_shows_the_wards_open_alarms(app_db):
    at = page_alone("pages/ward_screen.py", None)
    at.query_params["ward"] = "WB"
    at.run()
    open_wb = service.inbox(__import__("core.storage.repository", fromlist=["Repository"]).Repository.from_url(app_db), "WB")
    assert len(open_wb) > 0
    blob = _everything(at)
    from ui.alarms_ui import KIND_LABEL
    # the wall display lists the first nine (highest priority, oldest first) and counts the rest;
    # other page tests add alarms to the shared database, so judge the nine it shows
    assert all(KIND_LABEL[k] in blob for k in open_wb["kind"].head(9))
    assert all(m not in blob for m in open_wb["message"])        # message text stays off the wall
