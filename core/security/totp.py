"""TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps — what every authenticator app
speaks). Verification accepts the current step ±1 (clock drift between phone and server) and refuses
a step at or before the last one used, so a code shoulder-surfed or intercepted cannot be replayed
inside its window.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import io
from datetime import datetime

import pyotp

from core.errors import AuthError
from core.models import utc

STEP_S = 30          # RFC 6238 §5.2 recommended time-step size
DIGITS = 6           # what Google Authenticator / FreeOTP / Microsoft Authenticator display
VALID_WINDOW = 1     # ±1 step: RFC 6238 §5.2 recommends at most one step of network/clock delay
ISSUER = "Wardsight"


class TotpRejected(AuthError):
    """A second-factor code is wrong, malformed, outside the window or already used."""


def new_secret() -> str:
    """A fresh 160-bit base32 secret (RFC 4226 §4 recommends ≥ 128 bits, 160 preferred)."""
    return pyotp.random_base32(length=32)


def check_secret(secret: str) -> str:
    """Return `secret` if it is valid base32 of ≥ 80 bits, else raise TotpRejected."""
    try:
        raw = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    except (binascii.Error, AttributeError, ValueError) as exc:
        raise TotpRejected("TOTP secret is not valid base32") from exc
    if len(raw) < 10:
        raise TotpRejected("TOTP secret is shorter than 80 bits")
    return secret.upper()


def step_at(now: datetime) -> int:
    """The RFC 6238 time step (counter) containing `now`."""
    return int(utc(now).timestamp()) // STEP_S


def code_at(secret: str, now: datetime, step_offset: int = 0) -> str:
    """The code an authenticator shows at `now` (+ `step_offset` steps); used by tests and the demo."""
    return pyotp.TOTP(check_secret(secret), digits=DIGITS, interval=STEP_S).generate_otp(step_at(now) + step_offset)


def verify(secret: str, code: str, now: datetime, last_used_step: int | None = None) -> int:
    """Check `code` against the steps around `now`; return the matched step (store it as the new
    `last_used_step`). Raise TotpRejected for a malformed, wrong or replayed code."""
    cleaned = "".join(str(code or "").split())
    if len(cleaned) != DIGITS or not cleaned.isdigit():
        raise TotpRejected("code must be 6 digits")
    totp = pyotp.TOTP(check_secret(secret), digits=DIGITS, interval=STEP_S)
    current = step_at(now)
    matched = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # compare every candidate (no early exit) so timing does not reveal which step matched
        if hmac.compare_digest(totp.generate_otp(step), cleaned):
            matched = step
    if matched is None:
        raise TotpRejected("wrong code")
    if last_used_step is not None and matched <= last_used_step:
        raise TotpRejected("code already used")
    return matched


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """otpauth:// URI that authenticator apps import (Key Uri Format)."""
    return pyotp.TOTP(check_secret(secret), digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=username, issuer_name=issuer)


def qr_png(uri: str, box_size: int = 6) -> bytes:
    """PNG bytes of a QR code for `uri` (shown once at enrolment; never stored)."""
    import qrcode   # imported lazily: pillow is only needed on the enrolment page

    img = qrcode.make(uri, box_size=box_size, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
