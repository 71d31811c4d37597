"""AppTest for the alarm pages: the inbox renders every open alarm, acknowledging works for a role
with the kind's permission (and is audited with the actor), is refused for a role without it; the
drug storage, vitals and waste pages render with charts; help requests reach a responder."""
import json

import pandas as pd
import pytest

from core.alarms import service, tables
from core.security import audit
from core.storage.repository import Repository
from tests.apptest_support import app_as, page_alone, texts


@pytest.fixture()
def repo(app_db):
    service._LIVE.clear()         # pages act through the database, as in a process without the feed
    return Repository.from_url(app_db)


def _open(repo, prefix: str) -> pd.Series:
    df = service.inbox(repo)
    df = df[df["kind"].str.startswith(prefix) & df["state"].eq("active")]
    assert len(df), f"the sample feed raised no active {prefix} alarm"
    return df.iloc[0]


def test_inbox_lists_every_open_alarm_by_priority(repo):
    at = app_as("charge_nurse", "pages/alarms.py")
    assert not at.exception, at.exception
    shown = texts(at)
    df = service.inbox(repo)
    assert len(df) >= 3
    for msg in df["message"]:
        assert msg in shown
    ranks = df["priority"].map({"high": 3, "medium": 2, "low": 1}).tolist()
    assert ranks == sorted(ranks, reverse=True)
    assert "HIGH" in shown or "MEDIUM" in shown        # priority as text, not colour alone
    assert "nearest:" in shown and "level 0" in shown


def test_nurse_acknowledges_vitals_alarm_and_it_is_audited(repo):
    a = _open(repo, "vitals.")
    at = app_as("nurse", "pages/alarms.py")
    at.button(key=f"a-ack-{a['alarm_id']}").click().run()
    assert not at.exception, at.exception
    with repo.engine.connect() as conn:
        row = tables.load_alarm(conn, a["alarm_id"])
    assert row.state == "acknowledged" and row.acknowledged_by.startswith("t") and row.acknowledged_by.endswith("_nurse")
    log = audit.entries(repo.engine, object_type="alarm", object_id=a["alarm_id"])
    acked = log[log["action"] == "alarm.acknowledged"]
    assert len(acked) == 1 and acked.iloc[0]["actor"] == row.acknowledged_by and acked.iloc[0]["role"] == "nurse"


def test_nurse_may_not_acknowledge_storage_alarm(repo):
    a = _open(repo, "storage.")
    at = app_as("nurse", "pages/alarms.py")
    button = at.button(key=f"a-ack-{a['alarm_id']}")
    assert button.disabled and "ack_storage_alarm" in (button.help or "")
    with pytest.raises(service.AccessDenied):
        service.acknowledge(repo, a["alarm_id"], user="n1", role="nurse", now=pd.Timestamp.now(tz="UTC"))
    with repo.engine.connect() as conn:
        assert tables.load_alarm(conn, a["alarm_id"]).state == "active"


def _figs(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_drug_storage_page_shades_band_and_excursions(repo):
    at = app_as("pharmacist", "pages/drug_storage.py")
    at.selectbox(key="ds_ward").set_value("WB").run()
    assert not at.exception, at.exception
    figs = _figs(at)
    shapes = [s for f in figs for s in f["layout"].get("shapes", [])]
    assert any(s.get("type") == "rect" and s.get("xref") == "x" for s in shapes)        # excursion shaded
    assert any(s.get("type") == "rect" and s.get("yref") == "y" for s in shapes)        # allowed band
    shown = texts(at) + " ".join(" ".join(map(str, d.value.to_numpy().ravel())) for d in at.dataframe)
    # the freezer's drugs are listed ("drugs stored here"), whether or not its excursion is still open
    assert "Ward B freezer" in shown and ("Elasomeran" in shown or "Varicella" in shown or "Dinoprostone" in shown)
    assert "MKT" in shown


def test_vitals_page_audits_the_record_view_and_shows_subscores(repo):
    at = app_as("doctor", "pages/vitals.py")
    assert not at.exception, at.exception
    pid = at.selectbox(key="vs_patient").value
    log = audit.entries(repo.engine, object_type="patient", patient_id=pid)
    assert (log["action"] == "patient_record_view").sum() >= 1
    figs = _figs(at)
    assert figs and any(t.get("name") == "NEWS2" for t in figs[0]["data"])
    assert "resp_rate" in str(at.dataframe[-1].value["parameter"].tolist())


def test_vitals_page_refused_to_roles_without_patient_records(repo):
    at = page_alone("pages/vitals.py", "facilities")
    assert "You do not have access to this page." in texts(at)


def test_waste_page_shows_bins_and_events(repo):
    at = app_as("facilities", "pages/waste.py")
    assert not at.exception, at.exception
    fig = _figs(at)[0]
    names = {t.get("name") for t in fig["data"]}
    assert "bin (size = fill)" in names and "disposed" in names
    bins = at.dataframe[0].value
    assert len(bins) > 0 and {"fill_pct", "age_h", "limit_h"} <= set(bins.columns)


def test_help_request_goes_to_the_nearest_porter_and_can_be_accepted(repo):
    from tests.helpers import sample_site
    site = sample_site()
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    alarm = service.request_help(repo, site, role_needed="porter", room_id="WA-B1", requester="S002",
                                 user="nurse1", role="nurse", now=now)
    porters = set(site.entities.loc[site.entities["subtype"] == "porter", "entity_id"])
    assert alarm.kind == "help.request" and alarm.escalated_to_role == "porter"
    assert alarm.nearest_responder in porters | {None}
    again = service.request_help(repo, site, role_needed="porter", room_id="WA-B1", requester="S002",
                                 user="nurse1", role="nurse", now=now)
    assert again.alarm_id == alarm.alarm_id                              # one request, not two
    service.accept_help(repo, alarm.alarm_id, user="porter1", role="facilities", now=now)
    with repo.engine.connect() as conn:
        assert tables.load_alarm(conn, alarm.alarm_id).acknowledged_by == "porter1"
    with pytest.raises(service.AccessDenied):
        service.request_help(repo, site, role_needed="porter", room_id="WA-B1", requester="x", user="kiosk",
                             role="kiosk", now=now)
