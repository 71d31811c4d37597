"""Password hashing with argon2id (argon2-cffi's PasswordHasher uses argon2id with the RFC 9106
low-memory profile by default). Only hashes are stored; verification is constant-time in the library.
"""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InvalidInput

DEFAULT_HASHER = PasswordHasher()   # argon2id, RFC 9106 second recommended profile

MIN_PASSWORD_CHARS = 8              # NIST SP 800-63B minimum for memorised secrets [R]
MAX_PASSWORD_CHARS = 256            # bound the work an attacker can make the hasher do


class WeakPassword(InvalidInput):
    """A new password does not meet the minimum policy."""


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """argon2id hash (PHC string, salt included) of `password`; refuses too short / too long ones."""
    if not isinstance(password, str) or not (MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS):
        raise WeakPassword(f"password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters")
    return hasher.hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when `password` matches; False for a mismatch or a malformed / foreign hash."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when the hash was made with weaker / different parameters than `hasher` (rehash on login)."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# A valid hash of a random string: verified against when the username is unknown so a failed sign-in
# takes the same time whether or not the account exists (no user enumeration by timing).
_DUMMY_HASH: dict[int, str] = {}


def dummy_verify(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    key = id(hasher)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hasher.hash("wardsight-no-such-user-placeholder")
    verify_password(_DUMMY_HASH[key], password, hasher)
    return False
