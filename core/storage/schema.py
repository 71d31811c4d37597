"""SQLAlchemy Core schema. One `metadata` for every table; feature modules add their tables to it
(import them in `core.storage.tables_all` so `create_all` and Alembic see everything).

Times are BIGINT epoch milliseconds UTC (`*_ms`): fast to batch-insert, exact, and the same on
SQLite and PostgreSQL. Ids are short strings from the site description or the tag vendor.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()

sites = Table("sites", metadata,
              Column("site_id", String(64), primary_key=True),
              Column("name", String(200), nullable=False))

floors = Table("floors", metadata,
               Column("floor_id", String(64), primary_key=True),
               Column("site_id", String(64), nullable=False),
               Column("name", String(200), nullable=False),
               Column("level", Integer, nullable=False))

wards = Table("wards", metadata,
              Column("ward_id", String(64), primary_key=True),
              Column("floor_id", String(64), nullable=False),
              Column("name", String(200), nullable=False))

rooms = Table("rooms", metadata,
              Column("room_id", String(64), primary_key=True),
              Column("floor_id", String(64), nullable=False),
              Column("ward_id", String(64)),
              Column("name", String(200), nullable=False),
              Column("room_type", String(40), nullable=False),
              Column("cx_m", Float), Column("cy_m", Float))

beds = Table("beds", metadata,
             Column("bed_id", String(64), primary_key=True),
             Column("room_id", String(64), nullable=False),
             Column("name", String(200), nullable=False),
             Column("cx_m", Float), Column("cy_m", Float))

readers = Table("readers", metadata,
                Column("reader_id", String(64), primary_key=True),
                Column("antenna", Integer, primary_key=True),
                Column("floor_id", String(64), nullable=False),
                Column("room_id", String(64)),
                Column("bed_id", String(64)),
                Column("x_m", Float, nullable=False), Column("y_m", Float, nullable=False))

entities = Table("entities", metadata,
                 Column("entity_id", String(64), primary_key=True),
                 Column("kind", String(20), nullable=False),        # EntityKind
                 Column("subtype", String(40)),                      # staff role / device type / ...
                 Column("name", String(200), nullable=False),
                 Column("short_name", String(40)),                   # initials or pseudonym for public screens
                 Column("ward_id", String(64)),
                 Column("home_id", String(64)),                      # bed (patients) or room (devices)
                 Column("status", String(40)),                       # devices: available / in_use / cleaning
                 Column("attrs", Text))                              # JSON for kind-specific extras

tags = Table("tags", metadata,
             Column("tag_id", String(64), primary_key=True),
             Column("entity_id", String(64), nullable=False),
             Column("active", Boolean, nullable=False, default=True))

shifts = Table("shifts", metadata,
               Column("id", Integer, primary_key=True, autoincrement=True),
               Column("staff_id", String(64), nullable=False),
               Column("ward_id", String(64)),
               Column("start_ms", BigInteger, nullable=False),
               Column("end_ms", BigInteger, nullable=False),
               Index("ix_shifts_staff", "staff_id", "start_ms"))

# Raw reads are short-lived (purged after raw_read_retention_days); the identity of a read is
# (tag_id, ts_ms, origin) so replays and redeliveries are idempotent.
raw_reads = Table("raw_reads", metadata,
                  Column("tag_id", String(64), nullable=False),
                  Column("ts_ms", BigInteger, nullable=False),
                  Column("origin", String(80), nullable=False),      # reader_id:antenna, or rtls:floor
                  Column("rssi_dbm", Float),
                  Column("x_m", Float), Column("y_m", Float),
                  Column("floor_id", String(64)),
                  Column("room_id", String(64)),
                  Column("bed_id", String(64)),
                  UniqueConstraint("tag_id", "ts_ms", "origin", name="uq_raw_reads_identity"))

presence = Table("presence", metadata,
                 Column("tag_id", String(64), primary_key=True),
                 Column("entity_id", String(64), nullable=False),
                 Column("floor_id", String(64)),
                 Column("room_id", String(64)),
                 Column("bed_id", String(64)),
                 Column("x_m", Float), Column("y_m", Float),
                 Column("since_ms", BigInteger, nullable=False),
                 Column("last_seen_ms", BigInteger, nullable=False))

presence_changes = Table("presence_changes", metadata,
                         Column("id", Integer, primary_key=True, autoincrement=True),
                         Column("tag_id", String(64), nullable=False),
                         Column("entity_id", String(64), nullable=False),
                         Column("ts_ms", BigInteger, nullable=False),
                         Column("floor_id", String(64)),
                         Column("room_id", String(64)),       # NULL: location no longer known
                         Column("bed_id", String(64)),
                         Column("x_m", Float), Column("y_m", Float),
                         Index("ix_presence_changes_tag_ts", "tag_id", "ts_ms"),
                         Index("ix_presence_changes_ts", "ts_ms"))

quarantine = Table("quarantine", metadata,
                   Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("received_ms", BigInteger, nullable=False),
                   Column("source", String(80), nullable=False),
                   Column("reason", String(200), nullable=False),
                   Column("raw", Text),
                   Index("ix_quarantine_received", "received_ms"))

feed_stats = Table("feed_stats", metadata,
                   Column("source", String(80), primary_key=True),
                   Column("accepted", BigInteger, nullable=False, default=0),
                   Column("quarantined", BigInteger, nullable=False, default=0),
                   Column("last_batch_ms", BigInteger),
                   Column("last_lag_ms", BigInteger))
