"""Hash-chained audit log: every kind of tampering is detected at the right seq."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, update

import core.security.tables  # noqa: F401
from core.errors import InvalidInput
from core.security import audit
from core.security.tables import audit_log
from core.storage.engine import make_engine
from core.storage.schema import metadata

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def engine():
    eng = make_engine("sqlite://")
    metadata.create_all(eng)
    for i in range(10):
        audit.append(eng, ts=T0 + timedelta(seconds=i), actor=f"user{i % 3}", role="nurse", action="view",
                     object_type="patient", object_id=f"P{i}", patient_id=f"P{i}", reason="care",
                     detail={"page": "bedside", "n": i})
    return eng


def test_intact_chain_verifies(engine):
    result = audit.verify_chain(engine)
    assert (result.ok, result.checked, result.first_broken_seq, result.head_seq) == (True, 10, None, 10)
    assert audit.verify_chain(engine, anchor=(result.head_seq, result.head_hash)).ok


def test_hashes_chain_from_genesis(engine):
    frame = audit.entries(engine).sort_values("seq")
    assert frame["seq"].tolist() == list(range(1, 11))
    assert frame["prev_hash"].iloc[0] == audit.GENESIS_HASH
    assert frame["prev_hash"].iloc[1:].tolist() == frame["hash"].iloc[:-1].tolist()


@pytest.mark.parametrize("column, value", [("actor", "someone_else"), ("reason", "curiosity"),
                                           ("detail", '{"n":4,"page":"export"}'), ("ts_ms", 0),
                                           ("patient_id", None)],
                         ids=["actor", "reason", "detail", "timestamp", "patient-removed"])
def test_tampered_row_named(engine, column, value):
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 5).values(**{column: value}))
    result = audit.verify_chain(engine)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 5, 4)
    assert "altered" in result.reason


def test_tampered_row_with_recomputed_hash_breaks_next_link(engine):
    row = audit.entries(engine).set_index("seq").loc[5].to_dict()
    forged = {**row, "seq": 5, "actor": "someone_else"}
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 5)
                     .values(actor="someone_else", hash=audit.row_hash(row["prev_hash"], forged)))
    result = audit.verify_chain(engine)
    assert (result.ok, result.first_broken_seq) == (False, 6) and "prev_hash" in result.reason


@pytest.mark.parametrize("seq", [1, 4, 9], ids=["first", "middle", "second-last"])
def test_deleted_row_detected(engine, seq):
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == seq))
    result = audit.verify_chain(engine)
    assert (result.ok, result.first_broken_seq) == (False, seq + 1) and "missing" in result.reason


def test_reordered_rows_detected(engine):
    frame = audit.entries(engine).set_index("seq")
    cols = ["ts_ms", "actor", "action", "object_id", "patient_id", "detail", "prev_hash", "hash"]
    a, b = frame.loc[3, cols].to_dict(), frame.loc[4, cols].to_dict()
    with engine.begin() as conn:                       # swap the contents of rows 3 and 4
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(**b))
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(**a))
    result = audit.verify_chain(engine)
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_tail_truncation_detected_with_anchor(engine):
    head = audit.verify_chain(engine)
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 10))
    assert audit.verify_chain(engine).ok                         # invisible from inside the chain ...
    result = audit.verify_chain(engine, anchor=(head.head_seq, head.head_hash))
    assert not result.ok and result.first_broken_seq == 10       # ... but not against an anchor


def test_append_joins_callers_transaction(engine):
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            audit.append(conn, ts=T0, actor="a", role="admin", action="x", object_type="user", object_id="u")
            raise RuntimeError("action failed")
    assert audit.verify_chain(engine).checked == 10              # rolled back with the action


@pytest.mark.parametrize("kwargs", [{"actor": ""}, {"ts": datetime(2025, 1, 1)}, {"detail": {"x": float("nan")}}],
                         ids=["no-actor", "naive-ts", "nan-detail"])
def test_bad_rows_refused(engine, kwargs):
    base = dict(ts=T0, actor="a", role="admin", action="x", object_type="user", object_id="u")
    with pytest.raises(InvalidInput):
        audit.append(engine, **{**base, **kwargs})


def test_cli_verify_exit_codes(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    eng = make_engine(url)
    metadata.create_all(eng)
    for i in range(3):
        audit.append(eng, ts=T0, actor="a", role="admin", action="x", object_type="user", object_id=str(i))
    run = lambda: subprocess.run([sys.executable, "-m", "core.security", "verify-audit", "--db", url],
                                 capture_output=True, text=True, timeout=60)
    ok = run()
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    with eng.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(actor="b"))
    broken = run()
    assert broken.returncode == 1 and json.loads(broken.stdout)["first_broken_seq"] == 2
