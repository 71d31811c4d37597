"""AppTest for the operations and contact-tracing pages: who may open them, selectors, export gated
by the `export` permission, and the audit rows every export and every trace writes."""
import json

import pytest

from core.config import Settings
from core.security import audit
from core.storage.repository import Repository
from tests.apptest_support import app_as, page_alone, texts

OPS = "pages/operations.py"
CT = "pages/contact_tracing.py"


def _audit(action: str):
    engine = Repository.from_url(Settings.from_env().db_url).engine
    rows = audit.entries(engine)
    return rows[rows["action"] == action]


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("role", ["manager", "charge_nurse", "pharmacist", "facilities"])
def test_operations_renders_charts_for_allowed_roles(app_db, role):
    at = app_as(role, OPS, timeout=90)
    assert not at.exception, at.exception
    assert "includes generated demo history" in texts(at).lower()
    assert len(at.get("plotly_chart")) >= 8
    assert int(_metric(at, "Alarms").replace(",", "")) > 0


@pytest.mark.parametrize("page,role", [(OPS, "nurse"), (OPS, "doctor"), (CT, "nurse"), (CT, "pharmacist")],
                         ids=["ops-nurse", "ops-doctor", "ct-nurse", "ct-pharmacist"])
def test_pages_refuse_other_roles_even_by_url(app_db, page, role):
    assert "You do not have access to this page." in texts(page_alone(page, role))


def test_period_and_ward_selectors_narrow_the_numbers(app_db):
    at = app_as("manager", OPS, timeout=90)
    week = int(_metric(at, "Alarms").replace(",", ""))
    at.selectbox[0].select("Last 30 days").run()
    month = int(_metric(at, "Alarms").replace(",", ""))
    at.multiselect[0].select("WA").run()
    ward_a = int(_metric(at, "Alarms").replace(",", ""))
    assert not at.exception
    assert 0 < ward_a < month and week < month
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    load = next(f for f in figs if f["layout"]["title"]["text"] == "Alarm load per bed per day")
    assert load["data"][0]["x"] == ["Ward A · Acute Medical"]


def test_export_is_offered_only_with_the_export_permission(app_db):
    at = app_as("pharmacist", OPS, timeout=90)
    assert "CSV export needs the export permission" in texts(at)
    assert not [b for b in at.button if b.label == "Export CSV"]


def test_export_writes_an_audit_row(app_db):
    before = len(_audit("export"))
    at = app_as("manager", OPS, timeout=90)
    at.selectbox(key="ops_table").select("hand_hygiene").run()
    at.button(key="ops_go").click().run()
    assert not at.exception
    rows = _audit("export")
    assert len(rows) == before + 1
    row = rows.iloc[0]
    assert row["object_type"] == "operations_table" and row["object_id"] == "hand_hygiene"
    assert row["role"] == "manager" and json.loads(row["detail"])["table"] == "hand_hygiene"
    assert "Export recorded in the audit log." in texts(at)


def test_contact_trace_needs_a_reason_and_is_audited(app_db):
    before = len(_audit("contact_trace"))
    at = app_as("doctor", CT, timeout=90)
    at.selectbox[0].select("S002").run()
    at.button[0].click().run()
    assert "Give a reason" in texts(at)
    assert len(_audit("contact_trace")) == before
    at.text_input[0].input("norovirus in Bay 2").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    rows = _audit("contact_trace")
    assert len(rows) == before + 1
    row = rows.iloc[0]
    assert (row["object_type"], row["object_id"], row["reason"]) == ("staff", "S002", "norovirus in Bay 2")
    assert "Direct contacts" in texts(at)
    assert "CSV export needs the export permission" in texts(at)      # doctors trace, they do not export


def test_contact_trace_of_a_patient_records_the_patient(app_db):
    at = app_as("charge_nurse", CT, timeout=90)
    at.selectbox[0].select("P001").run()
    at.text_input[0].input("MRSA screen positive").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    row = _audit("contact_trace").iloc[0]
    assert (row["object_type"], row["patient_id"]) == ("patient", "P001")
