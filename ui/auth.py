"""Sign-in (password + TOTP second factor), the current user, and page guards.

Access is decided in `core.security.roles` (data); this module only asks and renders. Every page
starts with `auth.require_page("<key>")`, so a page opened by URL is refused as firmly as one hidden
from the navigation.
"""
from __future__ import annotations

import streamlit as st

from core.errors import AuthError
from core.security import audit, roles
from core.security.auth import AuthService, Session, seed_demo_users
from ui import state

SESSION_KEY = "ws_session"
TICKET_KEY = "ws_ticket"
# Demo accounts stand for these staff members of the sample site (their badges are on the map).
DEMO_STAFF = {"nurse": "S002", "doctor": "S010", "charge": "S001"}


@st.cache_resource
def service() -> AuthService:
    repo = state.repo()
    svc = AuthService(repo.engine)
    if state.settings().demo_mode:
        seed_demo_users(repo.engine, state.now(), staff_ids=DEMO_STAFF)
    return svc


def current_user() -> Session | None:
    """The signed-in session, refreshed on every run; None when signed out or expired."""
    sess: Session | None = st.session_state.get(SESSION_KEY)
    if sess is None:
        return None
    try:
        fresh = service().check_session(sess.token, state.now())
    except AuthError as exc:
        st.session_state.pop(SESSION_KEY, None)
        st.session_state["ws_notice"] = f"Signed out: {exc}"
        return None
    st.session_state[SESSION_KEY] = fresh
    return fresh


def role() -> str:
    user = current_user()
    return user.role if user else roles.Role.KIOSK.value


def require_page(key: str) -> Session | None:
    """Stop the page unless the current role may open it (kiosk = not signed in)."""
    user = current_user()
    r = user.role if user else roles.Role.KIOSK.value
    if not roles.can_view(r, key):
        st.error("You do not have access to this page." if user else "Please sign in to open this page.")
        st.stop()
    return user


def can(permission: str) -> bool:
    return roles.can(role(), permission)


def record(action: str, *, object_type: str, object_id: str, patient_id: str | None = None,
           reason: str | None = None, detail: dict | None = None) -> None:
    """Append an audit row for the current user (or the kiosk)."""
    user = current_user()
    audit.append(state.repo().engine, ts=state.now(), actor=user.username if user else "kiosk",
                 role=user.role if user else "kiosk", action=action, object_type=object_type,
                 object_id=object_id, patient_id=patient_id, reason=reason, detail=detail)


def sign_out() -> None:
    sess = st.session_state.pop(SESSION_KEY, None)
    if sess is not None:
        service().logout(sess.token, state.now())


def login_page() -> None:
    st.title("Sign in to Wardsight")
    if st.session_state.get("ws_notice"):
        st.info(st.session_state.pop("ws_notice"))
    svc = service()
    ticket = st.session_state.get(TICKET_KEY)
    if ticket is None:
        with st.form("login"):
            username = st.text_input("Username")
            password = st.text_input("Password", type="password")
            if st.form_submit_button("Continue", type="primary"):
                try:
                    st.session_state[TICKET_KEY] = svc.begin_login(username, password, state.now())
                    st.rerun()
                except AuthError as exc:
                    st.error(str(exc))
        if state.settings().demo_mode:
            st.caption("Demo mode: accounts and their second-factor secrets are listed in the README.")
        return
    if ticket.needs_enrolment:
        uri, png = svc.enrolment(ticket, state.now())
        st.write("Scan this code with an authenticator app, then enter the 6-digit code it shows.")
        st.image(png, width=220)
    with st.form("totp"):
        code = st.text_input("6-digit code from your authenticator", max_chars=6)
        ok, back = st.columns(2)
        if ok.form_submit_button("Sign in", type="primary"):
            try:
                st.session_state[SESSION_KEY] = svc.finish_login(ticket, code.strip(), state.now())
                st.session_state.pop(TICKET_KEY, None)
                st.rerun()
            except AuthError as exc:
                st.error(str(exc))
        if back.form_submit_button("Start again"):
            st.session_state.pop(TICKET_KEY, None)
            st.rerun()
