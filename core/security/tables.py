"""Tables of the security / privacy package, on the shared `core.storage.schema.metadata` (import
this module before `metadata.create_all` so they exist). Times are BIGINT epoch ms UTC like the rest.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from core.storage.schema import metadata

users = Table("users", metadata,
              Column("username", String(64), primary_key=True),
              Column("display_name", String(200), nullable=False),
              Column("role", String(40), nullable=False),            # core.security.roles.Role
              Column("staff_id", String(64)),                        # entities.entity_id of the person
              Column("password_hash", Text, nullable=False),         # argon2id PHC string
              Column("totp_secret", String(64), nullable=False),     # base32
              Column("totp_enrolled", Boolean, nullable=False, default=False),
              Column("totp_last_step", BigInteger),                  # last accepted TOTP step: replay guard
              Column("failed_attempts", Integer, nullable=False, default=0),
              Column("locked_until_ms", BigInteger),
              Column("created_ms", BigInteger, nullable=False),
              Column("active", Boolean, nullable=False, default=True))

# Only a SHA-256 of the bearer token is stored: a leaked table cannot be replayed as sessions.
sessions = Table("sessions", metadata,
                 Column("token_hash", String(64), primary_key=True),
                 Column("username", String(64), nullable=False),
                 Column("created_ms", BigInteger, nullable=False),
                 Column("last_active_ms", BigInteger, nullable=False),
                 Column("expires_ms", BigInteger, nullable=False),  # idle expiry, moved on every check
                 Index("ix_sessions_username", "username"))

# Password accepted, second factor pending. Short-lived; hash stored for the same reason as sessions.
login_tickets = Table("login_tickets", metadata,
                      Column("ticket_hash", String(64), primary_key=True),
                      Column("username", String(64), nullable=False),
                      Column("expires_ms", BigInteger, nullable=False))

# Append-only and hash-chained (core.security.audit). seq is assigned by the appender, not the DB,
# so a gap is evidence of a deleted row.
audit_log = Table("audit_log", metadata,
                  Column("seq", BigInteger, primary_key=True, autoincrement=False),
                  Column("ts_ms", BigInteger, nullable=False),
                  Column("actor", String(64), nullable=False),
                  Column("role", String(40), nullable=False),
                  Column("action", String(64), nullable=False),
                  Column("object_type", String(40), nullable=False),
                  Column("object_id", String(128)),
                  Column("patient_id", String(64)),
                  Column("reason", Text),
                  Column("detail", Text),                            # canonical JSON text
                  Column("prev_hash", String(64), nullable=False),
                  Column("hash", String(64), nullable=False),
                  Index("ix_audit_object", "object_type", "object_id"),
                  Index("ix_audit_patient", "patient_id"),
                  Index("ix_audit_ts", "ts_ms"))

# Several active keys per reader during a rotation.
reader_keys = Table("reader_keys", metadata,
                    Column("reader_id", String(64), primary_key=True),
                    Column("key", String(200), primary_key=True),
                    Column("active", Boolean, nullable=False, default=True))

seen_sequences = Table("seen_sequences", metadata,
                       Column("reader_id", String(64), primary_key=True),
                       Column("last_seq", BigInteger, nullable=False))

tracking_optouts = Table("tracking_optouts", metadata,
                         Column("id", Integer, primary_key=True, autoincrement=True),
                         Column("patient_id", String(64), nullable=False),
                         Column("recorded_by", String(64), nullable=False),
                         Column("ts_ms", BigInteger, nullable=False),
                         Column("reason", Text),
                         Column("active", Boolean, nullable=False, default=True),
                         Index("ix_optouts_patient", "patient_id"))

# What survives of staff movement after the retention horizon: how many distinct staff were in a
# room during an hour — enough for staffing analytics, no individual trail.
staff_presence_hourly = Table("staff_presence_hourly", metadata,
                              Column("id", Integer, primary_key=True, autoincrement=True),
                              Column("ward_id", String(64)),
                              Column("room_id", String(64), nullable=False),
                              Column("hour_ms", BigInteger, nullable=False),
                              Column("staff_count", Integer, nullable=False),
                              UniqueConstraint("room_id", "hour_ms", name="uq_staff_hourly_room_hour"))

# Security events raised by the feed itself (suspected cloned tags): one row per episode, its
# last_ms moved on while the impossible hops continue. The alarm service turns live episodes into
# "security.cloned_tag" alarms (core.security.hooks.pending_clone_conditions).
security_events = Table("security_events", metadata,
                        Column("id", Integer, primary_key=True, autoincrement=True),
                        Column("kind", String(40), nullable=False),          # "cloned_tag"
                        Column("tag_id", String(64), nullable=False),
                        Column("entity_id", String(64)),
                        Column("first_ms", BigInteger, nullable=False),
                        Column("last_ms", BigInteger, nullable=False),
                        Column("hops", Integer, nullable=False),             # impossible hops seen
                        Column("floor_id", String(64)),
                        Column("place_a", String(128)),
                        Column("place_b", String(128)),
                        Column("distance_m", Float),
                        Column("speed_mps", Float),
                        Column("reason", String(80), nullable=False),
                        Index("ix_security_events_last", "last_ms"),
                        Index("ix_security_events_tag", "tag_id"))

SECURITY_TABLES = (users, sessions, login_tickets, audit_log, reader_keys, seen_sequences,
                   tracking_optouts, staff_presence_hourly, security_events)
