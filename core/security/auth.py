"""Sign-in (password + TOTP), lockout, sessions with automatic logoff, demo accounts and
break-the-glass grants. Every sign-in outcome writes an audit row in the same transaction as the
state change it records.

Flow: `begin_login(username, password, now)` → LoginTicket (password accepted, second factor
pending) → `finish_login(ticket.token, code, now)` → Session. The UI keeps only `Session.token`
and calls `check_session(token, now)` on every page run.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from argon2 import PasswordHasher
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.errors import AuthError, InvalidInput, StorageError
from core.models import from_ms, to_ms
from core.security import audit, totp
from core.security.passwords import DEFAULT_HASHER, dummy_verify, hash_password, needs_rehash, verify_password
from core.security.roles import Role, as_role, require
from core.security.tables import login_tickets, sessions, users

# One message for every first-step failure: unknown user, wrong password, locked, disabled all look
# the same to the person at the keyboard (no user enumeration).
LOGIN_FAILED = "sign-in failed: wrong username, password or code, or the account is temporarily locked"
SESSION_EXPIRED = "session expired"
TICKET_EXPIRED = "sign-in timed out, please start again"

MAX_FAILURES = 5            # [E] NIST SP 800-63B §5.2.2 only caps at 100; 5 is the usual hospital policy
LOCKOUT_S = 900             # [E] 15 min lockout
SESSION_IDLE_S = 900        # HIPAA 164.312(a)(2)(iii) automatic logoff [R]; 15 min idle [E]
SESSION_MAX_S = 12 * 3600   # [E] one clinical shift: re-authenticate at least once a shift
TICKET_TTL_S = 300          # [E] time allowed between password and second factor
BREAK_GLASS_S = 1800        # [E] HL7 EHR-S FM TI.1.3.1 requires a time limit; 30 min default
MIN_REASON_CHARS = 10       # [E] a BTG rationale must be more than "x" (TI.2.1.2.8 rationale)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class LoginTicket:
    token: str
    username: str
    expires_at: datetime
    needs_enrolment: bool     # TOTP not confirmed yet: show the QR code (see AuthService.enrolment)


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    role: str
    display_name: str
    staff_id: str | None
    created_at: datetime
    last_active_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class BreakGlassGrant:
    username: str
    role: str
    patient_id: str
    reason: str
    granted_at: datetime
    expires_at: datetime
    audit_seq: int

    def active(self, now: datetime) -> bool:
        return self.granted_at <= now < self.expires_at


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token(ticket: str | LoginTicket) -> str:
    return ticket.token if isinstance(ticket, LoginTicket) else str(ticket or "")


def normalise_username(username: str) -> str:
    return str(username or "").strip().lower()


class AuthService:
    def __init__(self, engine: Engine, *, max_failures: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S,
                 session_idle_s: float = SESSION_IDLE_S, session_max_s: float = SESSION_MAX_S,
                 ticket_ttl_s: float = TICKET_TTL_S, hasher: PasswordHasher = DEFAULT_HASHER):
        if max_failures < 1 or lockout_s <= 0 or session_idle_s <= 0 or ticket_ttl_s <= 0:
            raise InvalidInput("auth limits must be positive")
        self.engine = engine
        self.max_failures = max_failures
        self.lockout_ms = int(lockout_s * 1000)
        self.idle_ms = int(session_idle_s * 1000)
        self.max_ms = int(session_max_s * 1000)
        self.ticket_ms = int(ticket_ttl_s * 1000)
        self.hasher = hasher

    # ---- accounts -------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: Role | str, display_name: str, *,
                    now: datetime, staff_id: str | None = None, totp_secret: str | None = None,
                    totp_enrolled: bool = False, created_by: str = "system",
                    created_by_role: str = "admin") -> str:
        """Create an account; return its TOTP secret (shown once, as a QR code, at enrolment)."""
        name = normalise_username(username)
        if not _USERNAME.match(name):
            raise InvalidInput(f"username {username!r}: 2-64 chars of a-z 0-9 . _ - starting alphanumeric")
        r = as_role(role)
        if r is None or r is Role.KIOSK:
            raise InvalidInput(f"role {role!r} cannot have an account")
        secret = totp.check_secret(totp_secret) if totp_secret else totp.new_secret()
        row = {"username": name, "display_name": display_name or name, "role": r.value, "staff_id": staff_id,
               "password_hash": hash_password(password, self.hasher), "totp_secret": secret,
               "totp_enrolled": totp_enrolled, "totp_last_step": None, "failed_attempts": 0,
               "locked_until_ms": None, "created_ms": to_ms(now), "active": True}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(**row))
                audit.append(conn, ts=now, actor=created_by, role=created_by_role, action="user_created",
                             object_type="user", object_id=name, detail={"role": r.value, "staff_id": staff_id})
        except IntegrityError as exc:
            raise InvalidInput(f"user {name!r} already exists") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot create user: {exc}") from exc
        return secret

    def unlock(self, username: str, now: datetime, *, by: str, by_role: Role | str) -> None:
        """Admin clears a lockout (audited)."""
        require(by_role, "manage_users")
        name = normalise_username(username)
        with self._tx() as conn:
            conn.execute(update(users).where(users.c.username == name)
                         .values(failed_attempts=0, locked_until_ms=None))
            audit.append(conn, ts=now, actor=by, role=Role(by_role).value, action="user_unlocked",
                         object_type="user", object_id=name)

    def set_active(self, username: str, active: bool, now: datetime, *, by: str, by_role: Role | str) -> None:
        """Admin enables / disables an account (audited); disabling ends its open sessions."""
        require(by_role, "manage_users")
        name = normalise_username(username)
        with self._tx() as conn:
            found = conn.execute(update(users).where(users.c.username == name).values(active=active)).rowcount
            if not found:
                raise InvalidInput(f"no user {name!r}")
            if not active:
                conn.execute(delete(sessions).where(sessions.c.username == name))
            audit.append(conn, ts=now, actor=by, role=Role(by_role).value,
                         action="user_enabled" if active else "user_disabled", object_type="user", object_id=name)

    def reset_second_factor(self, username: str, now: datetime, *, by: str, by_role: Role | str) -> str:
        """Admin issues a new TOTP secret (lost phone): the user enrols again at the next sign-in;
        open sessions end. Audited. Returns the new secret (shown once as a QR code at sign-in)."""
        require(by_role, "manage_users")
        name, secret = normalise_username(username), totp.new_secret()
        with self._tx() as conn:
            found = conn.execute(update(users).where(users.c.username == name).values(
                totp_secret=secret, totp_enrolled=False, totp_last_step=None)).rowcount
            if not found:
                raise InvalidInput(f"no user {name!r}")
            conn.execute(delete(sessions).where(sessions.c.username == name))
            audit.append(conn, ts=now, actor=by, role=Role(by_role).value, action="second_factor_reset",
                         object_type="user", object_id=name)
        return secret

    def list_users(self, now: datetime) -> "pd.DataFrame":
        """Accounts without secrets or hashes: username, display_name, role, staff_id, active,
        enrolled, locked (at `now`), failed_attempts, created."""
        import pandas as pd
        cols = [users.c.username, users.c.display_name, users.c.role, users.c.staff_id, users.c.active,
                users.c.totp_enrolled, users.c.locked_until_ms, users.c.failed_attempts, users.c.created_ms]
        with self._tx() as conn:
            rows = [dict(r) for r in conn.execute(select(*cols).order_by(users.c.username)).mappings()]
        frame = pd.DataFrame(rows, columns=[c.name for c in cols])
        locked = frame["locked_until_ms"].fillna(0).astype("int64") > to_ms(now)
        return pd.DataFrame({"username": frame["username"], "display_name": frame["display_name"],
                             "role": frame["role"], "staff_id": frame["staff_id"],
                             "active": frame["active"].astype(bool), "enrolled": frame["totp_enrolled"].astype(bool),
                             "locked": locked.to_numpy(), "failed_attempts": frame["failed_attempts"],
                             "created": pd.to_datetime(frame["created_ms"].astype("int64"), unit="ms", utc=True)})

    def sso_login(self, claims: Mapping, role: Role | str, now: datetime, *, issuer: str = "oidc") -> Session:
        """Open a session for a person the identity provider has authenticated (password and second
        factor are the IdP's job). The account `sso.<preferred_username|email|sub>` is created on
        first use and its role follows the IdP claim on every sign-in (audited when it changes)."""
        r = as_role(role)
        if r is None or r is Role.KIOSK:
            raise AuthError("your identity provider account has no Wardsight role")
        name = sso_username(claims)
        display = str(claims.get("name") or claims.get("email") or name)[:200]
        now_ms = to_ms(now)
        with self._tx() as conn:
            user = self._user(conn, name)
            if user is None:
                conn.execute(insert(users).values(
                    username=name, display_name=display, role=r.value, staff_id=None, password_hash=SSO_NO_PASSWORD,
                    totp_secret=totp.new_secret(), totp_enrolled=True, failed_attempts=0, created_ms=now_ms, active=True))
                audit.append(conn, ts=now, actor=f"sso:{issuer}"[:64], role="admin", action="user_created",
                             object_type="user", object_id=name, detail={"role": r.value, "issuer": issuer})
            elif user["active"] and user["role"] != r.value:
                conn.execute(update(users).where(users.c.username == name).values(role=r.value, display_name=display))
                audit.append(conn, ts=now, actor=f"sso:{issuer}"[:64], role="admin", action="role_changed",
                             object_type="user", object_id=name, detail={"from": user["role"], "to": r.value})
            user = self._user(conn, name)
            token = secrets.token_urlsafe(32)
            if user["active"]:
                conn.execute(insert(sessions).values(token_hash=_digest(token), username=name, created_ms=now_ms,
                                                     last_active_ms=now_ms, expires_ms=now_ms + self.idle_ms))
                self._audit(conn, now, name, user, "login_success", f"single sign-on ({issuer})")
            else:
                self._audit(conn, now, name, user, "login_failed", "disabled user (single sign-on)")
        if not user["active"]:
            raise AuthError(LOGIN_FAILED)
        return self._session(token, user, now_ms, now_ms)

    # ---- sign-in --------------------------------------------------------------------------------
    def begin_login(self, username: str, password: str, now: datetime) -> LoginTicket:
        """Check the password; return a ticket for the second factor or raise AuthError(LOGIN_FAILED)."""
        name, now_ms = normalise_username(username), to_ms(now)
        with self._tx() as conn:
            user = self._user(conn, name)
            if user is None or not user["active"]:
                dummy_verify(str(password), self.hasher)          # same work as a real check
                self._audit(conn, now, name[:64] or "?", user, "login_failed", "unknown or disabled user")
                ticket = None
            elif (user["locked_until_ms"] or 0) > now_ms:
                dummy_verify(str(password), self.hasher)
                self._audit(conn, now, name, user, "login_failed", "account locked")
                ticket = None
            elif not verify_password(user["password_hash"], str(password), self.hasher):
                self._record_failure(conn, user, now, "wrong password")
                ticket = None
            else:
                self._maybe_rehash(conn, user, str(password))
                ticket = self._issue_ticket(conn, user, now_ms)
        if ticket is None:
            raise AuthError(LOGIN_FAILED)
        return ticket

    def enrolment(self, ticket: str | LoginTicket, now: datetime) -> tuple[str, bytes]:
        """(otpauth URI, QR PNG) for a ticket whose account has not confirmed its second factor yet."""
        ticket = _token(ticket)
        with self._tx() as conn:
            user = self._ticket_user(conn, ticket, to_ms(now))
        if user is None:
            raise AuthError(TICKET_EXPIRED)
        if user["totp_enrolled"]:
            raise AuthError("second factor already enrolled; ask an administrator to reset it")
        uri = totp.provisioning_uri(user["totp_secret"], user["username"])
        return uri, totp.qr_png(uri)

    def finish_login(self, ticket: str | LoginTicket, code: str, now: datetime) -> Session:
        """Check the TOTP code for a ticket; return a new Session or raise AuthError."""
        ticket, now_ms = _token(ticket), to_ms(now)
        error: str | None = None
        with self._tx() as conn:
            user = self._ticket_user(conn, ticket, now_ms)
            if user is None:
                error = TICKET_EXPIRED
            elif (user["locked_until_ms"] or 0) > now_ms or not user["active"]:
                conn.execute(delete(login_tickets).where(login_tickets.c.ticket_hash == _digest(ticket)))
                self._audit(conn, now, user["username"], user, "login_failed", "account locked")
                error = LOGIN_FAILED
            else:
                try:
                    step = totp.verify(user["totp_secret"], code, now, user["totp_last_step"])
                except totp.TotpRejected as exc:
                    if self._record_failure(conn, user, now, f"second factor: {exc}"):
                        conn.execute(delete(login_tickets).where(login_tickets.c.username == user["username"]))
                    error = LOGIN_FAILED
                else:
                    session = self._open_session(conn, user, step, now, ticket)
        if error:
            raise AuthError(error)
        return session

    # ---- sessions -------------------------------------------------------------------------------
    def check_session(self, token: str, now: datetime) -> Session:
        """Refresh the session's last activity, or raise AuthError('session expired') when it is
        unknown, idle longer than session_idle_s, older than session_max_s, or its user is disabled."""
        now_ms, key = to_ms(now), _digest(str(token or ""))
        expired = False
        with self._tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == key)).mappings().first()
            user = self._user(conn, row["username"]) if row else None
            if row is None:
                expired = True
            elif (now_ms > row["expires_ms"] or now_ms - row["created_ms"] > self.max_ms
                  or user is None or not user["active"]):
                conn.execute(delete(sessions).where(sessions.c.token_hash == key))
                self._audit(conn, now, row["username"], user, "session_expired",
                            "idle timeout" if now_ms > row["expires_ms"] else "maximum session age or disabled")
                expired = True
            else:
                conn.execute(update(sessions).where(sessions.c.token_hash == key)
                             .values(last_active_ms=now_ms, expires_ms=now_ms + self.idle_ms))
        if expired:
            raise AuthError(SESSION_EXPIRED)
        return self._session(token, user, row["created_ms"], now_ms)

    def peek_session(self, token: str, now: datetime) -> Session:
        """Like check_session but without counting as activity (the idle watcher asks this), and
        without ending the session: raise AuthError('session expired') when it has run out."""
        now_ms, key = to_ms(now), _digest(str(token or ""))
        with self._tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == key)).mappings().first()
            user = self._user(conn, row["username"]) if row else None
        if (row is None or user is None or not user["active"] or now_ms > row["expires_ms"]
                or now_ms - row["created_ms"] > self.max_ms):
            raise AuthError(SESSION_EXPIRED)
        return Session(token=token, username=user["username"], role=user["role"], display_name=user["display_name"],
                       staff_id=user["staff_id"], created_at=from_ms(row["created_ms"]),
                       last_active_at=from_ms(row["last_active_ms"]),
                       expires_at=from_ms(min(row["expires_ms"], row["created_ms"] + self.max_ms)))

    def logout(self, token: str, now: datetime) -> None:
        """End the session (idempotent); audited when a session was open."""
        key = _digest(str(token or ""))
        with self._tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == key)).mappings().first()
            if row is None:
                return
            conn.execute(delete(sessions).where(sessions.c.token_hash == key))
            self._audit(conn, now, row["username"], self._user(conn, row["username"]), "logout", None)

    # ---- internals ------------------------------------------------------------------------------
    def _tx(self):
        return _Tx(self.engine)

    @staticmethod
    def _user(conn: Connection, name: str) -> dict | None:
        row = conn.execute(select(users).where(users.c.username == name)).mappings().first()
        return dict(row) if row else None

    @staticmethod
    def _audit(conn: Connection, now: datetime, actor: str, user: dict | None, action: str,
               reason: str | None) -> None:
        audit.append(conn, ts=now, actor=actor, role=user["role"] if user else "unknown", action=action,
                     object_type="user", object_id=actor, reason=reason)

    def _record_failure(self, conn: Connection, user: dict, now: datetime, reason: str) -> bool:
        """Count a failed factor; lock the account at max_failures. Return True when it locked."""
        failures = int(user["failed_attempts"] or 0) + 1
        locked = failures >= self.max_failures
        values = ({"failed_attempts": 0, "locked_until_ms": to_ms(now) + self.lockout_ms} if locked
                  else {"failed_attempts": failures})
        conn.execute(update(users).where(users.c.username == user["username"]).values(**values))
        self._audit(conn, now, user["username"], user, "login_failed", reason)
        if locked:
            audit.append(conn, ts=now, actor=user["username"], role=user["role"], action="account_locked",
                         object_type="user", object_id=user["username"],
                         reason=f"{failures} consecutive failed sign-in attempts",
                         detail={"locked_until_ms": values["locked_until_ms"]})
        return locked

    def _maybe_rehash(self, conn: Connection, user: dict, password: str) -> None:
        if needs_rehash(user["password_hash"], self.hasher):
            conn.execute(update(users).where(users.c.username == user["username"])
                         .values(password_hash=hash_password(password, self.hasher)))

    def _issue_ticket(self, conn: Connection, user: dict, now_ms: int) -> LoginTicket:
        token = secrets.token_urlsafe(32)
        conn.execute(delete(login_tickets).where(login_tickets.c.expires_ms <= now_ms))
        conn.execute(insert(login_tickets).values(ticket_hash=_digest(token), username=user["username"],
                                                  expires_ms=now_ms + self.ticket_ms))
        return LoginTicket(token, user["username"], from_ms(now_ms + self.ticket_ms), not user["totp_enrolled"])

    def _ticket_user(self, conn: Connection, ticket: str, now_ms: int) -> dict | None:
        row = conn.execute(select(login_tickets).where(login_tickets.c.ticket_hash == _digest(str(ticket or ""))))
        found = row.mappings().first()
        if found is None or found["expires_ms"] <= now_ms:
            return None
        return self._user(conn, found["username"])

    def _open_session(self, conn: Connection, user: dict, step: int, now: datetime, ticket: str) -> Session:
        now_ms, token = to_ms(now), secrets.token_urlsafe(32)
        conn.execute(update(users).where(users.c.username == user["username"])
                     .values(failed_attempts=0, locked_until_ms=None, totp_last_step=step, totp_enrolled=True))
        conn.execute(delete(login_tickets).where(login_tickets.c.ticket_hash == _digest(ticket)))
        conn.execute(insert(sessions).values(token_hash=_digest(token), username=user["username"],
                                             created_ms=now_ms, last_active_ms=now_ms,
                                             expires_ms=now_ms + self.idle_ms))
        self._audit(conn, now, user["username"], user, "login_success", None)
        return self._session(token, user, now_ms, now_ms)

    def _session(self, token: str, user: dict, created_ms: int, now_ms: int) -> Session:
        return Session(token=token, username=user["username"], role=user["role"],
                       display_name=user["display_name"], staff_id=user["staff_id"],
                       created_at=from_ms(created_ms), last_active_at=from_ms(now_ms),
                       expires_at=from_ms(min(now_ms + self.idle_ms, created_ms + self.max_ms)))


class _Tx:
    """engine.begin() that reports database failures as StorageError (AuthError passes through)."""

    def __init__(self, engine: Engine):
        self._cm = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except SQLAlchemyError as exc:
            raise StorageError(f"auth store unavailable: {exc}") from exc

    def __exit__(self, *exc_info) -> bool:
        try:
            return bool(self._cm.__exit__(*exc_info))
        except SQLAlchemyError as exc:
            raise StorageError(f"auth store failed: {exc}") from exc


def break_glass(engine: Engine, session: Session, patient_id: str, reason: str, now: datetime,
                duration_s: float = BREAK_GLASS_S) -> BreakGlassGrant:
    """Emergency access to one patient outside the user's list (HIPAA 164.312(a)(2)(ii) [R];
    HL7 EHR-S FM TI.1.3.1 scope = single patient, time limit, reason; TI.2.1.2.8 audit [V]).
    The UI holds the grant and drops it when the user leaves the patient."""
    require(session.role, "break_glass")
    why = str(reason or "").strip()
    if len(why) < MIN_REASON_CHARS:
        raise InvalidInput(f"break-the-glass needs a reason of at least {MIN_REASON_CHARS} characters")
    if not str(patient_id or "").strip():
        raise InvalidInput("break-the-glass needs a patient")
    expires = now + timedelta(seconds=duration_s)
    entry = audit.append(engine, ts=now, actor=session.username, role=session.role, action="break_glass",
                         object_type="patient", object_id=patient_id, patient_id=patient_id, reason=why,
                         detail={"purpose_of_use": "BTG", "expires_ms": to_ms(expires)})  # HL7 ActReason BTG [R]
    return BreakGlassGrant(session.username, session.role, str(patient_id), why, now, expires, entry.seq)


# ---- single sign-on (OIDC through Streamlit's st.login) ----------------------------------------------
SSO_NO_PASSWORD = "!sso-no-local-password"   # not a PHC string: verify_password always answers False
_SSO_CHARS = re.compile(r"[^a-z0-9._-]+")


def sso_username(claims: Mapping) -> str:
    """Local account name for an IdP identity: `sso.` + preferred_username / email / sub, cleaned.
    The prefix keeps IdP identities apart from local accounts (an IdP user called "admin" does not
    become the local admin)."""
    raw = str(claims.get("preferred_username") or claims.get("email") or claims.get("sub") or "").strip().lower()
    cleaned = _SSO_CHARS.sub("_", raw).strip("._-")
    if not cleaned:
        raise AuthError("the identity provider sent no usable user name (preferred_username, email or sub)")
    return ("sso." + cleaned)[:64]


def sso_role(claims: Mapping, claim: str = "roles", role_map: str | Mapping[str, str] = "") -> Role | None:
    """The Wardsight role for an IdP identity: the claim's value(s) mapped through `role_map`
    ("idp-group=role,..." or a dict; empty: values must be role names). The first mapping entry
    the person holds wins, so list the most specific group first. None: no role (refuse)."""
    values = claims.get(claim)
    held = {str(v) for v in (values if isinstance(values, (list, tuple, set)) else [values]) if v is not None}
    if isinstance(role_map, str):
        pairs = [p.split("=", 1) for p in role_map.split(",") if "=" in p]
        mapping = [(k.strip(), v.strip()) for k, v in pairs]
    else:
        mapping = list(role_map.items())
    if not mapping:
        mapping = [(r.value, r.value) for r in Role if r is not Role.KIOSK]
    for group, role in mapping:
        r = as_role(role)
        if group in held and r is not None and r is not Role.KIOSK:
            return r
    return None


# ---- demo accounts (WARDSIGHT_DEMO only; the README prints these) ----------------------------------
DEMO_PASSWORD = "wardsight-demo"

# username, role, display name, fixed base32 TOTP secret (public by design: demo mode only)
DEMO_ACCOUNTS: tuple[tuple[str, Role, str, str], ...] = (
    ("nurse", Role.NURSE, "Demo Nurse", "WARDSIGHTNURSEDEMOTOTPSECRETAAAA"),
    ("doctor", Role.DOCTOR, "Demo Doctor", "WARDSIGHTDOCTORDEMOTOTPSECRETAAA"),
    ("charge", Role.CHARGE_NURSE, "Demo Charge Nurse", "WARDSIGHTCHARGEDEMOTOTPSECRETAAA"),
    ("pharmacist", Role.PHARMACIST, "Demo Pharmacist", "WARDSIGHTPHARMADEMOTOTPSECRETAAA"),
    ("facilities", Role.FACILITIES, "Demo Facilities & Waste Officer", "WARDSIGHTFACILDEMOTOTPSECRETAAAA"),
    ("manager", Role.MANAGER, "Demo Ward Manager", "WARDSIGHTMANAGERDEMOTOTPSECRETAA"),
    ("admin", Role.ADMIN, "Demo Security Admin", "WARDSIGHTADMINDEMOTOTPSECRETAAAA"),
)


def seed_demo_users(engine: Engine, now: datetime, staff_ids: Mapping[str, str] | None = None, *,
                    hasher: PasswordHasher = DEFAULT_HASHER) -> list[str]:
    """Create the missing demo accounts (idempotent); `staff_ids` maps a demo username (e.g.
    "nurse", "doctor") to the staff entity it represents. Returns the usernames created."""
    service = AuthService(engine, hasher=hasher)
    staff_ids = dict(staff_ids or {})
    created = []
    with engine.connect() as conn:
        existing = set(conn.execute(select(users.c.username)).scalars())
    for username, role, display_name, secret in DEMO_ACCOUNTS:
        if username in existing:
            continue
        service.create_user(username, DEMO_PASSWORD, role, display_name, now=now,
                            staff_id=staff_ids.get(username), totp_secret=secret, totp_enrolled=True,
                            created_by="demo-seed", created_by_role=Role.ADMIN.value)
        created.append(username)
    return created


def demo_accounts_markdown() -> str:
    """README table of the demo accounts."""
    lines = ["| Username | Role | Password | TOTP secret (base32) |", "|---|---|---|---|"]
    lines += [f"| `{u}` | {r.value} | `{DEMO_PASSWORD}` | `{s}` |" for u, r, _, s in DEMO_ACCOUNTS]
    return "\n".join(lines) + "\n"
