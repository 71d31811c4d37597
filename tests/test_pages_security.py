"""The security features through the UI (AppTest, real sign-in, real database): brute-force lockout
and admin unlock, idle session expiry, a tampered audit row found by the audit viewer, user
administration, a patient's tracking opt-out on the map, and the "about me" page."""
from datetime import datetime, timezone

import pandas as pd
import streamlit as st
from sqlalchemy import select, update

from core.config import Settings
from core.security import totp
from core.security.auth import LOGIN_FAILED, MAX_FAILURES, AuthService
from core.security.tables import audit_log, sessions, tracking_optouts, users
from core.storage.repository import Repository
from tests.apptest_support import PASSWORD, SECRET, app_as, page_alone, session_for, texts


def engine():
    return Repository.from_url(Settings.from_env().db_url).engine


def now():
    return datetime.now(timezone.utc)


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def audit_rows(action: str, object_id: str | None = None) -> pd.DataFrame:
    query = select(audit_log).where(audit_log.c.action == action)
    if object_id is not None:
        query = query.where(audit_log.c.object_id == object_id)
    return pd.read_sql(query, engine())


def make_user(name: str, role: str = "nurse") -> None:
    AuthService(engine()).create_user(name, PASSWORD, role, name.title(), now=now(), totp_secret=SECRET,
                                      totp_enrolled=True)


def attempt(at, username: str, password: str):
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return button(at, "Continue").click().run()


def user_row(name: str) -> dict:
    with engine().connect() as conn:
        return dict(conn.execute(select(users).where(users.c.username == name)).mappings().one())


def test_brute_force_locks_the_account_and_admin_unlocks_it(app_db):
    make_user("brute.target")
    at = app_as(None)
    for i in range(MAX_FAILURES):
        at = attempt(at, "brute.target", f"wrong-guess-{i}")
        assert LOGIN_FAILED in texts(at) and not at.exception
    assert "locked for 15 minutes" in texts(at)
    assert user_row("brute.target")["locked_until_ms"] > now().timestamp() * 1000
    at = attempt(at, "brute.target", PASSWORD)                    # the right password no longer works
    assert LOGIN_FAILED in texts(at) and "6-digit code" not in texts(at)
    assert len(audit_rows("account_locked", "brute.target")) == 1

    admin = page_alone("pages/admin_users.py", "admin")
    listed = admin.dataframe[0].value.set_index("username")
    assert listed.at["brute.target", "status"] == "locked"
    admin.selectbox(key="manage_user").select("brute.target").run()
    button(admin, "Unlock").click().run()
    assert user_row("brute.target")["locked_until_ms"] is None
    assert audit_rows("user_unlocked", "brute.target")["actor"].str.endswith("_admin").all()

    at = app_as(None)
    at = attempt(at, "brute.target", PASSWORD)
    at.text_input[0].input(totp.code_at(SECRET, now()))
    at = button(at, "Sign in").click().run()
    assert "Sign in to Wardsight" not in texts(at) and not at.exception


def test_idle_session_expires_with_a_notice(app_db):
    at = app_as("charge_nurse")
    sess = at.session_state["ws_session"]
    assert "Signs out after 15 min without activity" in texts(at)
    assert "Sign in to Wardsight" not in texts(at)
    with engine().begin() as conn:                           # 16 minutes pass without a click
        conn.execute(update(sessions).where(sessions.c.username == sess.username)
                     .values(expires_ms=int(now().timestamp() * 1000) - 60_000))
    at.run()
    assert "Please sign in to open this page." in texts(at) and not at.get("plotly_chart")
    assert "You were signed out: no activity for 15 minutes" in texts(at)
    assert [b.label for b in at.button][:1] == ["Continue"]      # the sign-in form, right there
    assert "ws_session" not in at.session_state
    assert audit_rows("session_expired", sess.username)["reason"].tolist() == ["idle timeout"]


def test_audit_viewer_verifies_the_chain_and_finds_a_tampered_row(app_db):
    at = page_alone("pages/audit_viewer.py", "manager")
    button(at, "Verify the chain").click().run()
    assert "Chain intact" in texts(at)
    victim = audit_rows("login_success").iloc[0]
    with engine().begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == int(victim["seq"])).values(actor="someone-else"))
    try:
        button(at, "Verify the chain").click().run()
        assert f"Chain broken at seq {int(victim['seq'])}: row content does not match its hash" in texts(at)
    finally:
        with engine().begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == int(victim["seq"])).values(actor=victim["actor"]))
    button(at, "Verify the chain").click().run()
    assert "Chain intact" in texts(at)


def test_audit_viewer_filters_by_action_and_patient(app_db):
    at = page_alone("pages/audit_viewer.py", "admin")
    at.multiselect[0].select("login_success").run()
    shown = at.dataframe[0].value
    assert len(shown) > 0 and set(shown["action"]) == {"login success"}
    at.text_input[0].input("P-NOBODY").run()
    assert len(at.dataframe[0].value) == 0


def test_admin_creates_disables_and_resets_an_account(app_db):
    at = page_alone("pages/admin_users.py", "admin")
    admin_name = at.session_state["ws_session"].username
    at.text_input[0].input("new.pharmacist")
    at.text_input[1].input("New Pharmacist")
    at.selectbox[1].select("pharmacist")
    at.text_input[2].input("a-long-initial-password")
    at = button(at, "Create account").click().run()
    assert "Created new.pharmacist" in texts(at) and not at.exception
    row = user_row("new.pharmacist")
    assert row["role"] == "pharmacist" and not row["totp_enrolled"]           # enrols by QR at first sign-in
    assert audit_rows("user_created", "new.pharmacist")["actor"].tolist() == [admin_name]

    at.selectbox(key="manage_user").select("new.pharmacist").run()
    button(at, "Disable").click().run()
    assert not user_row("new.pharmacist")["active"]
    at.run()
    button(at, "Enable").click().run()
    assert user_row("new.pharmacist")["active"]
    button(at, "Reset second factor").click().run()
    assert [len(audit_rows(a, "new.pharmacist")) for a in ("user_disabled", "user_enabled", "second_factor_reset")] == [1, 1, 1]


def test_nurse_records_and_withdraws_a_tracking_optout_on_the_map(app_db):
    at = page_alone("pages/ward_map.py", "nurse")
    nurse = at.session_state["ws_session"].username
    at.selectbox(key="optout_patient").select("P001").run()
    at.text_input(key="optout_note").input("asked at admission").run()
    at.button(key="optout_record").click().run()
    assert "no longer tracked or stored" in texts(at)
    try:
        with engine().connect() as conn:
            active = conn.execute(select(tracking_optouts.c.recorded_by).where(
                tracking_optouts.c.patient_id == "P001", tracking_optouts.c.active.is_(True))).scalars().all()
        assert active == [nurse]
        logged = audit_rows("tracking_optout", "P001")
        assert logged[["actor", "role", "reason"]].values.tolist() == [[nurse, "nurse", "asked at admission"]]
        st.cache_data.clear()                                  # the next map refresh
        at.run()
        assert "WA-S1-1 · Jon Novak: tracking paused at the patient's request" in texts(at)
    finally:
        at.button(key="optout_withdraw").click().run()
    assert len(audit_rows("tracking_optout_withdrawn", "P001")) == 1
    st.cache_data.clear()
    assert "tracking paused" not in texts(at.run())


def test_map_offers_no_optout_form_to_roles_without_the_permission(app_db):
    at = page_alone("pages/ward_map.py", "manager")
    assert not at.exception and "Patient tracking opt-out" not in [e.label for e in at.expander]


def test_about_me_shows_holdings_retention_and_who_acted_on_my_account(app_db):
    sess = session_for("nurse", "S004")
    AuthService(engine()).unlock(sess.username, now(), by="sec.admin", by_role="admin")
    from streamlit.testing.v1 import AppTest
    from tests.apptest_support import APP
    from pathlib import Path
    at = AppTest.from_file(str(Path(APP).parent / "pages/about_me.py"), default_timeout=30)
    at.session_state["ws_session"] = sess
    at.run()
    assert not at.exception
    held = at.dataframe[0].value.set_index("what")
    from core.storage.schema import presence_changes
    with engine().connect() as conn:
        moves = len(conn.execute(select(presence_changes.c.ts_ms).where(presence_changes.c.entity_id == "S004")).all())
    assert held.at["movement history", "records"] == moves
    assert held.at["movement history", "kept for"].startswith("14 days")
    assert "14 days" in texts(at) and "You are not located while off duty" in texts(at)
    viewers = at.dataframe[1].value
    assert ["sec.admin", "user unlocked"] in viewers[["who", "what"]].values.tolist()


def test_map_shows_patient_names_only_to_roles_allowed_to_see_them(app_db):
    from tests.helpers import sample_site
    pts = sample_site().patients
    full = (pts["given"] + " " + pts["family"]).tolist()

    def chart(role: str) -> str:
        at = page_alone("pages/ward_map.py", role)
        assert not at.exception
        return at.get("plotly_chart")[0].proto.spec

    nurse, manager = chart("nurse"), chart("manager")
    assert any(name in nurse for name in full)
    assert not [name for name in full if name in manager]
    assert any(short in manager for short in pts["short_name"])
