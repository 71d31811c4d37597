"""Append-only, hash-chained audit log (HIPAA 45 CFR 164.312(b) audit controls [R]; standards §6.3:
who / what / when / why for every privileged action, retained ≥ 6 years [V-derived]).

Each row's hash = sha256(prev_hash + canonical JSON of the row's fields including its seq), so
editing, deleting or reordering a row breaks the chain at that row, and `verify_chain` names it.
Deleting the newest rows (tail truncation) cannot be seen from inside the chain: keep the head
(`VerifyResult.head_seq/head_hash`) somewhere else (daily report, another system) and pass it back
as `anchor`.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from core.storage.engine import read_frame
from core.errors import InvalidInput, StorageError
from core.models import to_ms
from core.security.tables import audit_log

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("seq", "ts_ms", "actor", "role", "action", "object_type", "object_id", "patient_id",
                 "reason", "detail")
_APPEND_LOCK = threading.Lock()        # serialises appends inside one process (Streamlit threads)
_PG_LOCK_KEY = 0x5741524453           # pg_advisory_xact_lock key: serialises appends across processes
_RETRIES = 5


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str | None
    head_seq: int | None = None
    head_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, no NaN. Non-JSON scalars become strings."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False, default=str)
    except ValueError as exc:
        raise InvalidInput(f"audit detail is not representable as JSON: {exc}") from exc


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    body = canonical_json({k: row.get(k) for k in HASHED_FIELDS})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _ts_ms(ts: datetime | int) -> int:
    if isinstance(ts, bool):
        raise InvalidInput("audit ts must be a tz-aware datetime or epoch ms")
    if isinstance(ts, int):
        return ts
    try:
        return to_ms(ts)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"audit ts {ts!r}: {exc}") from exc


def _required(name: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        raise InvalidInput(f"audit row needs a non-empty {name}")
    return str(value)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def append(target: Engine | Connection, *, ts: datetime | int, actor: str, role: str, action: str,
           object_type: str, object_id: Any, patient_id: Any = None, reason: str | None = None,
           detail: Any = None) -> AuditEntry:
    """Append one row. With an Engine the row is committed in its own transaction (retried on a
    concurrent-append conflict); with a Connection it joins the caller's transaction, so the audit
    row commits or rolls back together with the action it records."""
    row = {"ts_ms": _ts_ms(ts), "actor": _required("actor", actor), "role": _required("role", role),
           "action": _required("action", action), "object_type": _required("object_type", object_type),
           "object_id": _optional(object_id), "patient_id": _optional(patient_id),
           "reason": _optional(reason), "detail": None if detail is None else canonical_json(detail)}
    if isinstance(target, Connection):
        with _APPEND_LOCK:
            return _append(target, row)
    for attempt in range(_RETRIES):
        try:
            with _APPEND_LOCK, target.begin() as conn:
                return _append(conn, row)
        except (IntegrityError, DBAPIError) as exc:
            # another process took the same seq (or SQLite's snapshot went stale): read the head again
            if attempt == _RETRIES - 1:
                raise StorageError(f"audit append failed after {_RETRIES} attempts: {exc}") from exc
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _append(conn: Connection, row: dict[str, Any]) -> AuditEntry:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                        .order_by(audit_log.c.seq.desc()).limit(1)).first()
    seq = 1 if last is None else int(last.seq) + 1
    prev = GENESIS_HASH if last is None else last.hash
    full = {**row, "seq": seq}
    digest = row_hash(prev, full)
    conn.execute(audit_log.insert().values(**full, prev_hash=prev, hash=digest))
    return AuditEntry(seq=seq, hash=digest)


def verify_chain(engine: Engine | Connection, anchor: tuple[int, str] | None = None,
                 page_rows: int = 5000) -> VerifyResult:
    """Walk the chain in seq order and report the first broken link: a gap in seq (deleted rows),
    a prev_hash that is not the previous row's hash (reordered / inserted / rewritten), or a hash
    that does not match the row's content (edited). `anchor=(seq, hash)` also checks that a head
    recorded earlier is still there unchanged (detects tail truncation)."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    anchor_seen = anchor is None
    try:
        for row in _rows(engine, page_rows):
            broken = _check(row, expected_seq, prev_hash)
            if broken:
                return VerifyResult(False, checked, int(row["seq"]), broken)
            if anchor is not None and int(row["seq"]) == anchor[0]:
                if row["hash"] != anchor[1]:
                    return VerifyResult(False, checked, anchor[0], "row at anchor seq has a different hash")
                anchor_seen = True
            checked += 1
            expected_seq, prev_hash = int(row["seq"]) + 1, row["hash"]
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read audit log: {exc}") from exc
    head = (expected_seq - 1, prev_hash) if checked else (None, None)
    if not anchor_seen:
        return VerifyResult(False, checked, anchor[0], "rows missing at the end: anchored head not found", *head)
    return VerifyResult(True, checked, None, None, *head)


def _check(row: dict[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    seq = int(row["seq"])
    if seq != expected_seq:
        return f"rows missing: expected seq {expected_seq}, found {seq}"
    if row["prev_hash"] != prev_hash:
        return f"prev_hash does not match the hash of seq {seq - 1} (row reordered, inserted or rewritten)"
    if row_hash(prev_hash, row) != row["hash"]:
        return "row content does not match its hash (row altered)"
    return None


def _rows(target: Engine | Connection, page_rows: int):
    """Keyset-paged scan so a multi-year log is never loaded at once."""
    after = 0
    while True:
        query = (select(audit_log).where(audit_log.c.seq > after)
                 .order_by(audit_log.c.seq).limit(page_rows))
        if isinstance(target, Connection):
            page = target.execute(query).mappings().all()
        else:
            with target.connect() as conn:
                page = conn.execute(query).mappings().all()
        if not page:
            return
        yield from (dict(r) for r in page)
        after = int(page[-1]["seq"])


def entries(engine: Engine, *, object_type: str | None = None, object_id: str | None = None,
            patient_id: str | None = None, actor: str | None = None, since_ms: int | None = None,
            until_ms: int | None = None, actions: Iterable[str] | None = None,
            limit: int = 1000) -> pd.DataFrame:
    """Newest-first audit rows matching every given filter (audit viewer, access reports);
    `until_ms` is exclusive, `actions` keeps rows whose action is one of them."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if actions:
        query = query.where(audit_log.c.action.in_(list(actions)))
    if until_ms is not None:
        query = query.where(audit_log.c.ts_ms < until_ms)
    for column, value in (("object_type", object_type), ("object_id", object_id),
                          ("patient_id", patient_id), ("actor", actor)):
        if value is not None:
            query = query.where(audit_log.c[column] == value)
    if since_ms is not None:
        query = query.where(audit_log.c.ts_ms >= since_ms)
    return read_frame(engine, query, "audit log")


def actions(engine: Engine) -> list[str]:
    """Distinct actions in the log (filter choices)."""
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(audit_log.c.action).distinct()).scalars())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read audit log: {exc}") from exc


def actors(engine: Engine) -> list[str]:
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(audit_log.c.actor).distinct()).scalars())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read audit log: {exc}") from exc
