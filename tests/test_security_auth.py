"""Passwords, TOTP and the sign-in service: lockout, session expiry, replay refusal, audit rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

import core.security.tables  # noqa: F401  (registers the tables on metadata)
from core.errors import AccessDenied, AuthError, InvalidInput
from core.security import audit, totp
from core.security.auth import (DEMO_ACCOUNTS, DEMO_PASSWORD, LOGIN_FAILED, SESSION_EXPIRED, AuthService,
                                break_glass, demo_accounts_markdown, seed_demo_users)
from core.security.passwords import hash_password, needs_rehash, verify_password, WeakPassword
from core.security.tables import audit_log, users
from core.storage.engine import make_engine
from core.storage.schema import metadata

T0 = datetime(2025, 3, 4, 8, 0, 0, tzinfo=timezone.utc)
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)   # keeps the suite quick
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery"


@pytest.fixture
def engine():
    eng = make_engine("sqlite://")
    metadata.create_all(eng)
    return eng


@pytest.fixture
def auth(engine):
    service = AuthService(engine, max_failures=3, lockout_s=600, session_idle_s=900, hasher=FAST)
    service.create_user("alice", PASSWORD, "nurse", "Alice N", now=T0, staff_id="S1", totp_secret=SECRET)
    return service


def actions(engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(audit_log.c.action, audit_log.c.actor, audit_log.c.reason)
                                               .order_by(audit_log.c.seq))]


def login(auth, now, password=PASSWORD, code=None):
    ticket = auth.begin_login("alice", password, now)
    return auth.finish_login(ticket.token, code or totp.code_at(SECRET, now), now)


# ---- passwords -------------------------------------------------------------------------------------
def test_password_hash_is_argon2id_salted_and_verifies():
    h1, h2 = hash_password(PASSWORD), hash_password(PASSWORD)
    assert h1.startswith("$argon2id$") and h1 != h2
    assert verify_password(h1, PASSWORD) and not verify_password(h1, PASSWORD + "x")
    assert not verify_password("not-a-hash", PASSWORD)


def test_weaker_hash_needs_rehash_and_short_password_refused():
    assert needs_rehash(hash_password(PASSWORD, FAST)) and not needs_rehash(hash_password(PASSWORD))
    with pytest.raises(WeakPassword):
        hash_password("short")


# ---- TOTP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset_s, ok", [(0, True), (-30, True), (30, True), (-65, False), (65, False)],
                         ids=["now", "prev-step", "next-step", "two-steps-old", "two-steps-ahead"])
def test_totp_window_is_plus_minus_one_step(offset_s, ok):
    code = pyotp.TOTP(SECRET).at(T0 + timedelta(seconds=offset_s))     # independent implementation
    if ok:
        assert totp.verify(SECRET, code, T0) == totp.step_at(T0 + timedelta(seconds=offset_s))
    else:
        with pytest.raises(totp.TotpRejected, match="wrong code"):
            totp.verify(SECRET, code, T0)


@pytest.mark.parametrize("code", ["", "12345", "abcdef", None, "1234567"], ids=["empty", "short", "alpha", "none", "long"])
def test_totp_malformed_code_rejected(code):
    with pytest.raises(totp.TotpRejected):
        totp.verify(SECRET, code, T0)


def test_totp_same_code_cannot_be_replayed_in_its_window():
    code = totp.code_at(SECRET, T0)
    step = totp.verify(SECRET, code, T0)
    with pytest.raises(totp.TotpRejected, match="already used"):
        totp.verify(SECRET, code, T0 + timedelta(seconds=10), last_used_step=step)
    older = totp.code_at(SECRET, T0, -1)
    with pytest.raises(totp.TotpRejected, match="already used"):
        totp.verify(SECRET, older, T0, last_used_step=step)


def test_enrolment_uri_and_qr_png():
    uri = totp.provisioning_uri(SECRET, "alice")
    assert uri.startswith("otpauth://totp/") and f"secret={SECRET}" in uri and "issuer=Wardsight" in uri
    png = totp.qr_png(uri)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 200


# ---- sign-in ---------------------------------------------------------------------------------------
def test_login_success_returns_session_and_audits(auth, engine):
    session = login(auth, T0)
    assert (session.username, session.role, session.staff_id) == ("alice", "nurse", "S1")
    assert auth.check_session(session.token, T0 + timedelta(seconds=60)).username == "alice"
    assert actions(engine)[-1][:2] == ("login_success", "alice")


def test_unknown_user_and_wrong_password_give_the_same_message(auth, engine):
    with pytest.raises(AuthError) as unknown:
        auth.begin_login("mallory", PASSWORD, T0)
    with pytest.raises(AuthError) as wrong:
        auth.begin_login("alice", "wrong password", T0)
    assert str(unknown.value) == str(wrong.value) == LOGIN_FAILED
    assert [a for a, *_ in actions(engine)[-2:]] == ["login_failed", "login_failed"]


def test_brute_force_locks_account_then_lock_expires(auth, engine):
    for _ in range(3):
        with pytest.raises(AuthError):
            auth.begin_login("alice", "guess-guess", T0)
    assert "account_locked" in [a for a, *_ in actions(engine)]
    with pytest.raises(AuthError, match="sign-in failed"):          # right password, still locked
        auth.begin_login("alice", PASSWORD, T0 + timedelta(seconds=599))
    assert actions(engine)[-1] == ("login_failed", "alice", "account locked")
    assert login(auth, T0 + timedelta(seconds=601)).username == "alice"


def test_wrong_totp_codes_count_towards_lockout(auth, engine):
    for i in range(3):
        ticket = auth.begin_login("alice", PASSWORD, T0)
        with pytest.raises(AuthError):
            auth.finish_login(ticket.token, "000000" if totp.code_at(SECRET, T0) != "000000" else "111111", T0)
    with engine.connect() as conn:
        locked_until = conn.execute(select(users.c.locked_until_ms)).scalar_one()
    assert locked_until is not None and locked_until > int(T0.timestamp() * 1000)
    with pytest.raises(AuthError):
        auth.begin_login("alice", PASSWORD, T0 + timedelta(seconds=5))


def test_successful_login_resets_failure_count(auth):
    for _ in range(2):
        with pytest.raises(AuthError):
            auth.begin_login("alice", "guess-guess", T0)
    login(auth, T0)
    for _ in range(2):                                                 # 2 more would lock without the reset
        with pytest.raises(AuthError):
            auth.begin_login("alice", "guess-guess", T0 + timedelta(minutes=2))
    assert login(auth, T0 + timedelta(minutes=3)).username == "alice"


def test_totp_code_replay_refused_across_logins(auth):
    code = totp.code_at(SECRET, T0)
    login(auth, T0, code=code)
    ticket = auth.begin_login("alice", PASSWORD, T0 + timedelta(seconds=5))
    with pytest.raises(AuthError):
        auth.finish_login(ticket.token, code, T0 + timedelta(seconds=5))


def test_ticket_expires(auth):
    ticket = auth.begin_login("alice", PASSWORD, T0)
    later = T0 + timedelta(seconds=301)
    with pytest.raises(AuthError, match="start again"):
        auth.finish_login(ticket.token, totp.code_at(SECRET, later), later)


def test_session_idle_expiry_and_refresh(auth, engine):
    session = login(auth, T0)
    t = T0
    for _ in range(4):                                   # activity every 14 min keeps it alive
        t += timedelta(minutes=14)
        assert auth.check_session(session.token, t).last_active_at == t
    with pytest.raises(AuthError, match=SESSION_EXPIRED):
        auth.check_session(session.token, t + timedelta(seconds=901))
    assert actions(engine)[-1][0] == "session_expired"
    with pytest.raises(AuthError, match=SESSION_EXPIRED):   # gone for good
        auth.check_session(session.token, t + timedelta(seconds=902))


def test_session_maximum_age(auth):
    session = login(auth, T0)
    t = T0
    while t < T0 + timedelta(hours=12) - timedelta(minutes=10):
        t += timedelta(minutes=10)
        auth.check_session(session.token, t)
    with pytest.raises(AuthError):
        auth.check_session(session.token, T0 + timedelta(hours=12, minutes=5))


def test_logout_ends_session(auth, engine):
    session = login(auth, T0)
    auth.logout(session.token, T0 + timedelta(seconds=5))
    with pytest.raises(AuthError):
        auth.check_session(session.token, T0 + timedelta(seconds=6))
    assert actions(engine)[-1][:2] == ("logout", "alice")


def test_new_user_must_enrol_and_gets_qr(engine):
    service = AuthService(engine, hasher=FAST)
    secret = service.create_user("bob", PASSWORD, "doctor", "Bob D", now=T0)
    ticket = service.begin_login("bob", PASSWORD, T0)
    assert ticket.needs_enrolment
    uri, png = service.enrolment(ticket.token, T0)
    assert secret in uri and png.startswith(b"\x89PNG")
    service.finish_login(ticket.token, totp.code_at(secret, T0), T0)
    later = T0 + timedelta(minutes=1)
    ticket = service.begin_login("bob", PASSWORD, later)
    assert not ticket.needs_enrolment
    with pytest.raises(AuthError, match="already enrolled"):        # the secret is never shown twice
        service.enrolment(ticket, later)
    assert service.finish_login(ticket, totp.code_at(secret, later), later).role == "doctor"


@pytest.mark.parametrize("username, role", [("x", "nurse"), ("ok.name", "kiosk"), ("ok.name", "janitor")],
                         ids=["short-name", "kiosk-role", "unknown-role"])
def test_create_user_rejects_bad_input(engine, username, role):
    with pytest.raises(InvalidInput):
        AuthService(engine, hasher=FAST).create_user(username, PASSWORD, role, "X", now=T0)


def test_duplicate_user_rejected(auth):
    with pytest.raises(InvalidInput, match="exists"):
        auth.create_user("Alice", PASSWORD, "nurse", "Alice again", now=T0)


def test_demo_users_one_per_role_with_documented_secrets(engine):
    created = seed_demo_users(engine, T0, {"nurse": "STAFF-N1", "doctor": "STAFF-D1"}, hasher=FAST)
    assert len(created) == 7 and seed_demo_users(engine, T0, hasher=FAST) == []      # idempotent
    with engine.connect() as conn:
        rows = {r.username: r for r in conn.execute(select(users))}
    assert {r.role for r in rows.values()} == {"nurse", "doctor", "charge_nurse", "pharmacist", "facilities",
                                                "manager", "admin"}
    assert rows["nurse"].staff_id == "STAFF-N1" and rows["doctor"].staff_id == "STAFF-D1"
    table = demo_accounts_markdown()
    service = AuthService(engine, hasher=FAST)
    for username, _, _, secret in DEMO_ACCOUNTS:
        assert secret in table
        ticket = service.begin_login(username, DEMO_PASSWORD, T0)
        code = pyotp.TOTP(secret).at(T0)                                # what the phone app would show
        assert service.finish_login(ticket.token, code, T0).username == username


def test_break_glass_needs_permission_and_reason_and_is_audited(auth, engine):
    session = login(auth, T0)
    with pytest.raises(InvalidInput):
        break_glass(engine, session, "P7", "x", T0)
    grant = break_glass(engine, session, "P7", "patient collapsed in corridor", T0, duration_s=600)
    assert grant.active(T0 + timedelta(seconds=599)) and not grant.active(T0 + timedelta(seconds=600))
    row = audit.entries(engine, patient_id="P7").iloc[0]
    assert (row["action"], row["actor"], row["reason"]) == ("break_glass", "alice", "patient collapsed in corridor")
    pharm = session.__class__(**{**session.__dict__, "role": "pharmacist"})
    with pytest.raises(AccessDenied):
        break_glass(engine, pharm, "P7", "patient collapsed in corridor", T0)
    assert audit.verify_chain(engine).ok


def test_admin_disable_ends_sessions_and_unlock_clears_lockout(auth, engine):
    session = login(auth, T0)
    with pytest.raises(AccessDenied):
        auth.set_active("alice", False, T0, by="bob", by_role="nurse")
    auth.set_active("alice", False, T0, by="root", by_role="admin")
    with pytest.raises(AuthError):
        auth.check_session(session.token, T0 + timedelta(seconds=1))
    with pytest.raises(AuthError, match="sign-in failed"):
        auth.begin_login("alice", PASSWORD, T0 + timedelta(seconds=2))
    auth.set_active("alice", True, T0, by="root", by_role="admin")
    for _ in range(3):
        with pytest.raises(AuthError):
            auth.begin_login("alice", "guess-guess", T0 + timedelta(minutes=1))
    auth.unlock("alice", T0 + timedelta(minutes=2), by="root", by_role="admin")
    assert login(auth, T0 + timedelta(minutes=2)).username == "alice"
    assert {"user_disabled", "user_enabled", "user_unlocked"} <= {a for a, *_ in actions(engine)}


# ---- idle watcher, administration, single sign-on ---------------------------------------------------
def test_peek_does_not_count_as_activity(auth, engine):
    sess = login(auth, T0)
    assert auth.peek_session(sess.token, T0 + timedelta(seconds=600)).expires_at == T0 + timedelta(seconds=900)
    with pytest.raises(AuthError, match=SESSION_EXPIRED):      # peeking at 10 min did not extend it
        auth.peek_session(sess.token, T0 + timedelta(seconds=901))
    assert "session_expired" not in [a for a, _, _ in actions(engine)]   # peek never ends a session itself
    with pytest.raises(AuthError, match=SESSION_EXPIRED):
        auth.check_session(sess.token, T0 + timedelta(seconds=901))


def test_reset_second_factor_forces_enrolment_and_ends_sessions(auth, engine):
    sess = login(auth, T0)
    with pytest.raises(AccessDenied):
        auth.reset_second_factor("alice", T0, by="bob", by_role="manager")
    secret = auth.reset_second_factor("alice", T0, by="root", by_role="admin")
    assert secret != SECRET
    with pytest.raises(AuthError):
        auth.check_session(sess.token, T0 + timedelta(seconds=1))
    ticket = auth.begin_login("alice", PASSWORD, T0 + timedelta(seconds=60))
    assert ticket.needs_enrolment
    with pytest.raises(AuthError):                              # the old phone's code is worthless now
        auth.finish_login(ticket, totp.code_at(SECRET, T0 + timedelta(seconds=60)), T0 + timedelta(seconds=60))
    assert ("second_factor_reset", "root", None) in actions(engine)


def test_list_users_shows_lock_state_and_no_secrets(auth):
    for k in range(3):
        with pytest.raises(AuthError):
            auth.begin_login("alice", f"wrong-{k}", T0)
    listed = auth.list_users(T0 + timedelta(seconds=1))
    assert listed.to_dict("records")[0] | {"created": None} == {
        "username": "alice", "display_name": "Alice N", "role": "nurse", "staff_id": "S1", "active": True,
        "enrolled": False, "locked": True, "failed_attempts": 0, "created": None}
    assert not auth.list_users(T0 + timedelta(seconds=601))["locked"].iloc[0]
    assert not {"password_hash", "totp_secret"} & set(listed.columns)


@pytest.mark.parametrize("claims,claim,mapping,role", [
    ({"roles": ["nurse"]}, "roles", "", "nurse"),
    ({"roles": "admin"}, "roles", "", "admin"),
    ({"groups": ["ward-7", "it-sec"]}, "groups", "it-sec=admin,ward-7=nurse", "admin"),
    ({"groups": ["ward-7", "it-sec"]}, "groups", "ward-7=nurse,it-sec=admin", "nurse"),
    ({"groups": ["visitors"]}, "groups", "ward-7=nurse", None),
    ({"roles": ["kiosk"]}, "roles", "", None),
    ({}, "roles", "", None),
], ids=["list", "string", "map-order-admin", "map-order-nurse", "unmapped", "kiosk-not-a-role", "no-claim"])
def test_sso_role_mapping(claims, claim, mapping, role):
    from core.security.auth import sso_role
    got = sso_role(claims, claim, mapping)
    assert (got.value if got else None) == role


def test_sso_login_creates_account_follows_role_and_refuses_disabled(auth, engine):
    claims = {"preferred_username": "Admin", "email": "a@x.org", "name": "Ann Admin", "iss": "https://idp"}
    sess = auth.sso_login(claims, "nurse", T0, issuer="https://idp")
    assert sess.username == "sso.admin" and sess.role == "nurse"      # never the local "admin"
    assert auth.check_session(sess.token, T0 + timedelta(seconds=5)).role == "nurse"
    with pytest.raises(AuthError):                                    # no local password for an SSO account
        auth.begin_login("sso.admin", "anything-at-all", T0)
    assert auth.sso_login(claims, "charge_nurse", T0 + timedelta(seconds=10), issuer="https://idp").role == "charge_nurse"
    auth.set_active("sso.admin", False, T0 + timedelta(seconds=20), by="root", by_role="admin")
    with pytest.raises(AuthError):
        auth.sso_login(claims, "charge_nurse", T0 + timedelta(seconds=30))
    done = [a for a, actor, _ in actions(engine) if actor in ("sso.admin", "sso:https://idp")]
    assert done == ["user_created", "login_success", "login_failed", "role_changed", "login_success", "login_failed"]


def test_demo_code_command_prints_the_code_an_authenticator_shows(monkeypatch, capsys):
    from datetime import datetime, timezone
    from core.security import totp
    from core.security.__main__ import main
    from core.security.auth import DEMO_ACCOUNTS
    monkeypatch.setenv("WARDSIGHT_DEMO", "1")
    assert main(["demo-code", "nurse"]) == 0
    secret = next(s for u, _, _, s in DEMO_ACCOUNTS if u == "nurse")
    now = datetime.now(timezone.utc)
    assert capsys.readouterr().out.strip() in {totp.code_at(secret, now, k) for k in (-1, 0)}
    monkeypatch.setenv("WARDSIGHT_DEMO", "0")
    assert main(["demo-code", "nurse"]) == 2
