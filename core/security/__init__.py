"""Security and privacy core (issue 5): pure domain code, no UI.

- passwords  — argon2id password hashing
- totp       — TOTP second factor (RFC 6238), enrolment QR, replay refusal
- tables     — SQLAlchemy Core tables of this package (users, sessions, audit_log, reader keys ...)
- auth       — sign-in with lockout, sessions with idle logoff, demo accounts, break-the-glass
- roles      — role x page / role x permission matrix as data
- audit      — append-only, hash-chained audit log and its verifier
- signing    — per-reader HMAC-SHA256 feed message integrity (standards §6.1 [E])
- clones     — cloned / spoofed tag detection (impossible travel, simultaneous presence)
- privacy    — staff privacy filter, "what we know about me", retention purge, patient opt-outs

Run `python -m core.security --help` for the audit verifier and the retention purge.
"""
