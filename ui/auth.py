"""Sign-in (password + TOTP second factor, or single sign-on), the current user, page guards and the
idle-logoff watcher.

Access is decided in `core.security.roles` (data); this module only asks and renders. Every page
starts with `auth.require_page("<key>")`, so a page opened by URL is refused as firmly as one hidden
from the navigation.
"""
from __future__ import annotations

import importlib.util

import streamlit as st

from core.errors import AuthError
from core.security import audit, roles
from core.security.auth import (LOCKOUT_S, MAX_FAILURES, AuthService, Session, seed_demo_users, sso_role)
from ui import state

SESSION_KEY = "ws_session"
TICKET_KEY = "ws_ticket"
NOTICE_KEY = "ws_notice"
FAILURES_KEY = "ws_failures"
SSO_REFUSED_KEY = "ws_sso_refused"
# Demo accounts stand for these staff members of the sample site (their badges are on the map).
DEMO_STAFF = {"nurse": "S002", "doctor": "S010", "charge": "S001", "manager": "S041"}
IDLE_WATCH_S = 20          # how often an open page checks whether its session has run out


@st.cache_resource
def service() -> AuthService:
    repo = state.repo()
    svc = AuthService(repo.engine, session_idle_s=state.settings().session_idle_s)
    if state.settings().demo_mode:
        seed_demo_users(repo.engine, state.now(), staff_ids=DEMO_STAFF)
    return svc


def idle_text(short: bool = False) -> str:
    """'15 minutes' / '15 min' (or seconds below a minute) — the configured idle sign-out."""
    idle_s = state.settings().session_idle_s
    if idle_s < 60:
        return f"{idle_s:g} s"
    n = round(idle_s / 60)
    return f"{n} min" if short else f"{n} minute{'s' if n != 1 else ''}"


def _expired_notice() -> str:
    return (f"You were signed out: no activity for {idle_text()} (or the session reached its maximum "
            "length). Please sign in again.")


def _fragment_rerun() -> bool:
    """True while only a fragment reruns (a live map refreshing itself): that is not the person
    doing anything, so it must not keep an unattended session alive."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        ctx = get_script_run_ctx()
        return bool(ctx is not None and ctx.fragment_ids_this_run)
    except Exception:  # noqa: BLE001 - internal API moved: fall back to counting it as activity
        return False


def current_user() -> Session | None:
    """The signed-in session, refreshed on every run a person caused; None when signed out or expired."""
    sess: Session | None = st.session_state.get(SESSION_KEY)
    if sess is None:
        return _sso_session()
    svc = service()
    try:
        fresh = (svc.peek_session if _fragment_rerun() else svc.check_session)(sess.token, state.now())
    except AuthError:
        _end_local(_expired_notice())
        return None
    st.session_state[SESSION_KEY] = fresh
    return fresh


def _end_local(notice: str | None) -> None:
    st.session_state.pop(SESSION_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice
    if sso_enabled() and _sso_logged_in():
        st.session_state[SSO_REFUSED_KEY] = notice or "signed out"   # do not sign straight back in
        st.logout()


def role() -> str:
    user = current_user()
    return user.role if user else roles.Role.KIOSK.value


def require_page(key: str) -> Session | None:
    """Stop the page unless the current role may open it (kiosk = not signed in)."""
    user = current_user()
    r = user.role if user else roles.Role.KIOSK.value
    if not roles.can_view(r, key):
        st.error("You do not have access to this page." if user else "Please sign in to open this page.")
        if user is None:            # expired or opened by URL: sign in right here, then see the page
            login_page(title=False)
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
    st.session_state[NOTICE_KEY] = "You have signed out."
    if sso_enabled() and _sso_logged_in():
        st.session_state[SSO_REFUSED_KEY] = "signed out"
        st.logout()


@st.fragment(run_every=IDLE_WATCH_S)
def idle_watch() -> None:
    """Sidebar line with the idle sign-out time; ends the page as soon as the session runs out, so a
    screen left open does not keep showing patient data (HIPAA 164.312(a)(2)(iii) automatic logoff).
    Peeking does not count as activity."""
    sess: Session | None = st.session_state.get(SESSION_KEY)
    if sess is None:
        return
    try:
        live = service().peek_session(sess.token, state.now())
    except AuthError:
        _end_local(_expired_notice())
        st.rerun(scope="app")
        return
    st.caption(f":material/timer: Signs out after {idle_text(short=True)} without activity "
               f"(at {state.local(live.expires_at):%H:%M} unless you use Wardsight).")


# ---- single sign-on (optional) -------------------------------------------------------------------
def sso_enabled() -> bool:
    """WARDSIGHT_SSO=1, this Streamlit has st.login and Authlib is installed."""
    return bool(state.settings().sso and hasattr(st, "login") and importlib.util.find_spec("authlib"))


def _sso_logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:  # noqa: BLE001 - no [auth] section in secrets.toml: nobody is signed in via SSO
        return False


def _sso_session() -> Session | None:
    """Turn a Streamlit OIDC identity into a Wardsight session (role from the configured claim)."""
    if not sso_enabled() or not _sso_logged_in() or st.session_state.get(SSO_REFUSED_KEY):
        return None
    cfg = state.settings()
    claims = st.user.to_dict()
    r = sso_role(claims, cfg.sso_role_claim, cfg.sso_role_map)
    try:
        if r is None:
            raise AuthError("your identity provider account has no Wardsight role; ask an administrator")
        sess = service().sso_login(claims, r, state.now(), issuer=str(claims.get("iss") or "oidc"))
    except AuthError as exc:
        st.session_state[SSO_REFUSED_KEY] = str(exc)
        return None
    st.session_state[SESSION_KEY] = sess
    return sess


# ---- the sign-in page ----------------------------------------------------------------------------
def login_page(title: bool = True) -> None:
    """The sign-in page (a centred column), or with title=False the bare form for a refused page."""
    if not title:
        _sign_in()
        return
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title("Sign in to Wardsight")
        _sign_in()


def _sign_in() -> None:
    if st.session_state.get(NOTICE_KEY):
        st.info(st.session_state.pop(NOTICE_KEY))
    svc = service()
    ticket = st.session_state.get(TICKET_KEY)
    if ticket is None:
        _password_form(svc)
        _sso_button()
        if state.settings().demo_mode:
            st.caption("Demo mode: accounts and their second-factor secrets are listed in the README.")
        return
    _second_factor(svc, ticket)


def _second_factor(svc: AuthService, ticket) -> None:
    if ticket.needs_enrolment:
        try:
            uri, png = svc.enrolment(ticket, state.now())
        except AuthError as exc:
            st.session_state.pop(TICKET_KEY, None)
            st.error(str(exc))
            return
        st.write("Scan this code with an authenticator app, then enter the 6-digit code it shows.")
        st.image(png, width=220)
    with st.form("totp"):
        code = st.text_input("6-digit code from your authenticator", max_chars=6)
        ok, back = st.columns(2)
        if ok.form_submit_button("Sign in", type="primary"):
            try:
                st.session_state[SESSION_KEY] = svc.finish_login(ticket, code.strip(), state.now())
                st.session_state.pop(TICKET_KEY, None)
                st.session_state.pop(FAILURES_KEY, None)
                st.rerun()
            except AuthError as exc:
                _failed(str(exc))
                if "start again" in str(exc) or _failures() >= MAX_FAILURES:
                    st.session_state.pop(TICKET_KEY, None)
        if back.form_submit_button("Start again"):
            st.session_state.pop(TICKET_KEY, None)
            st.rerun()
    _lockout_warning()


def _password_form(svc: AuthService) -> None:
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Continue", type="primary"):
            try:
                st.session_state[TICKET_KEY] = svc.begin_login(username, password, state.now())
                st.rerun()
            except AuthError as exc:
                _failed(str(exc))
    _lockout_warning()


def _failures() -> int:
    return int(st.session_state.get(FAILURES_KEY, 0))


def _failed(message: str) -> None:
    st.session_state[FAILURES_KEY] = _failures() + 1
    st.error(message)


def _lockout_warning() -> None:
    """Counted in this browser only: the server's answer never says whether an account exists or is
    locked, but someone who has just failed five times deserves to know what happens next."""
    n = _failures()
    if n >= MAX_FAILURES:
        st.warning(f":material/lock: {n} failed attempts. After {MAX_FAILURES} failures in a row an account is "
                   f"locked for {LOCKOUT_S // 60} minutes; an administrator can unlock it sooner (Admin → Users).")
    elif n >= MAX_FAILURES - 2:
        st.caption(f"{n} failed attempts: an account is locked for {LOCKOUT_S // 60} minutes "
                   f"after {MAX_FAILURES} failures in a row.")


def _sso_button() -> None:
    if not sso_enabled():
        return
    refused = st.session_state.get(SSO_REFUSED_KEY)
    if refused and refused != "signed out" and not refused.startswith("You were signed out"):
        st.error(f"Single sign-on: {refused}")
    st.divider()
    if st.button("Sign in with your hospital account (single sign-on)", icon=":material/key:"):
        st.session_state.pop(SSO_REFUSED_KEY, None)
        if _sso_logged_in():
            st.rerun()
        st.login()
