"""File replay: JSONL and CSV, reader and position reads, counts that add up, idempotent re-runs and
the command's JSON summary and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pandas as pd
import pytest

from core.config import Settings
from core.feeds.replay import ReplayInputError, reason_kind, replay_file
from core.services import build_pipeline
from core.storage import schema as s
from core.storage.repository import Repository
from tests.helpers import sample_site
from tests.pg_support import REPO_ROOT

WALL = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)


def _tags(kind: str, shape: str, n: int) -> list[str]:
    site = sample_site()
    t = site.tags.merge(site.entities, on="entity_id")
    return t[(t["kind"] == kind) & (t["read_shape"] == shape)]["tag_id"].astype(str).head(n).tolist()


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _good_rows(n_ticks: int = 5, wall: datetime = WALL) -> list[dict]:
    """Position reads of patients in their bed and reader reads of devices at one antenna, one per
    tag and second (no read is superseded by a stronger one in its window)."""
    site = sample_site()
    beds = site.beds.set_index("bed_id")
    patients = site.entities[site.entities["kind"] == "patient"].merge(site.tags, on="entity_id").head(4)
    devices = _tags("device", "reader", 3)
    ant = site.readers.iloc[0]
    rows = []
    for k in range(n_ticks):
        ts = wall - timedelta(minutes=5) + timedelta(seconds=k)
        for _, p in patients.iterrows():
            b = beds.loc[p["home_id"]]
            rows.append({"ts": _iso(ts), "tag_id": p["tag_id"], "x_m": float(b["cx_m"]), "y_m": float(b["cy_m"]),
                         "floor_id": b["floor_id"], "battery_pct": 50 + k})
        for tag in devices:
            rows.append({"ts": _iso(ts), "tag_id": tag, "reader_id": ant["reader_id"], "antenna": int(ant["antenna"]),
                         "rssi_dbm": -55.0})
    return rows


BAD_ROWS = [
    ({"ts": "2026-11-21T09:55:00Z", "tag_id": "E280FFFF00000000DEADBEEF", "x_m": 1, "y_m": 1, "floor_id": "F1"}, "unknown tag E280FFFF00000000DEADBEEF"),
    ({"ts": "2026-11-21T09:55:00Z", "reader_id": "RD-WA-S1", "antenna": 1, "rssi_dbm": 12.0}, "rssi_dbm=+12.0 is positive; RFID/BLE RSSI is negative"),
    ({"ts": "2026-11-21T09:55:00", "x_m": 1, "y_m": 1, "floor_id": "F1"}, "ts is not an ISO 8601 time with a zone, or epoch ms"),
    ({"ts": "2026-11-21T10:20:00Z", "x_m": 1, "y_m": 1, "floor_id": "F1"}, "clock skew: ts is 1200 s ahead of the server"),
    ({"ts": "2026-11-21T09:55:00Z", "x_m": 1, "y_m": 1, "floor_id": "F1", "battery_pct": 140}, "battery_pct is not a number 0..100"),
]


@pytest.fixture
def pipe(tmp_path):
    repo = Repository.from_url(f"sqlite:///{tmp_path / 'replay.db'}")
    repo.create_schema()
    repo.load_site(sample_site())
    return build_pipeline(sample_site(), repo, Settings())


def _bad(tag: str) -> list[dict]:
    return [{**row, "tag_id": row.get("tag_id", tag)} for row, _ in BAD_ROWS]


def _write_jsonl(path, rows, extra_lines=()):
    with open(path, "wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r) + b"\n")
        for line in extra_lines:
            fh.write(line + b"\n")
    return path


def test_jsonl_counts_add_up_and_reasons_are_named(pipe, tmp_path):
    good = _good_rows()
    bad = _bad(_tags("patient", "position", 1)[0])
    path = _write_jsonl(tmp_path / "reads.jsonl", good + bad, [b"{not json", b""])
    out = replay_file(path, pipe, wall_now=WALL).as_dict()
    assert out["accepted"] == len(good) == pipe.repo.table_count(s.raw_reads)
    assert out["quarantined"] == len(bad) + 1
    expected = {reason_kind(reason) for _, reason in BAD_ROWS}
    assert expected <= set(out["reasons"]) and sum(out["reasons"].values()) == out["quarantined"]
    assert out["rows"] == len(good) + len(bad) + 1          # the blank line is not a row
    assert out["superseded"] == 0 and out["withheld"] == {}


def test_replaying_the_same_file_twice_stores_it_once(pipe, tmp_path):
    path = _write_jsonl(tmp_path / "reads.jsonl", _good_rows())
    first = replay_file(path, pipe, wall_now=WALL).as_dict()
    changes = pipe.repo.table_count(s.presence_changes)
    second = replay_file(path, pipe, wall_now=WALL).as_dict()
    assert second["accepted"] == 0 and second["withheld"] == {"already stored": first["accepted"]}
    assert pipe.repo.table_count(s.raw_reads) == first["accepted"]
    assert pipe.repo.table_count(s.presence_changes) == changes      # presence did not move twice


def test_csv_with_epoch_ms_and_iso_times(pipe, tmp_path):
    rows = pd.DataFrame(_good_rows(3)).astype({"ts": object})
    rows.loc[::2, "ts"] = pd.to_datetime(rows.loc[::2, "ts"], format="ISO8601").dt.as_unit("ms").astype("int64")
    path = tmp_path / "reads.csv"
    rows.to_csv(path, index=False)
    out = replay_file(path, pipe, wall_now=WALL).as_dict()
    assert out["accepted"] == len(rows) and out["quarantined"] == 0


def test_omlox_locations_are_position_reads(pipe, tmp_path):
    site = sample_site()
    bed = site.beds.iloc[0]
    tag = _tags("patient", "position", 1)[0]
    loc = {"position": {"type": "Point", "coordinates": [float(bed["cx_m"]), float(bed["cy_m"])]}, "provider_id": tag,
           "timestamp_generated": "2026-11-21T09:58:00Z", "floor_id": bed["floor_id"]}
    out = replay_file(_write_jsonl(tmp_path / "omlox.jsonl", [[loc]]), pipe, wall_now=WALL).as_dict()
    assert out["accepted"] == 1
    assert pipe.repo.presence().iloc[0]["room_id"] == bed["room_id"]


def test_replay_clock_follows_the_file(pipe, tmp_path):
    """A file from two days ago: nothing is skew, and presence 'since' is the file's time, not today."""
    rows = _good_rows(2)
    for r in rows:
        r["ts"] = _iso(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) - timedelta(days=2))
    out = replay_file(_write_jsonl(tmp_path / "old.jsonl", rows), pipe, wall_now=WALL).as_dict()
    assert out["quarantined"] == 0
    assert pipe.repo.presence()["since_ms"].max() < (WALL - timedelta(days=1)).timestamp() * 1000


@pytest.mark.parametrize("content,name", [(None, "missing.jsonl"), (b"a,b\n1,2\n", "nocols.csv")],
                         ids=["missing-file", "csv-without-ts-tag"])
def test_unusable_input_raises(pipe, tmp_path, content, name):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReplayInputError):
        replay_file(path, pipe, wall_now=WALL)


def test_reason_kind_folds_ids_and_numbers():
    assert reason_kind("unknown tag E280FFFF00000000DEADBEEF") == reason_kind("unknown tag E2801160600002084E11A1C3")
    assert reason_kind("clock skew: ts is 600 s ahead of the server") == "clock skew: ts is … s ahead of the server"


def test_command_prints_summary_and_exit_codes(tmp_path):
    """The real command: JSON summary on stdout, exit 0; a missing file exits 2 with the reason."""
    rows = _good_rows(2, wall=datetime.now(timezone.utc).replace(microsecond=0))
    path = _write_jsonl(tmp_path / "cli.jsonl", rows, [b"[1, 2]"])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    run = subprocess.run([sys.executable, "-m", "core.feeds", "replay", str(path), "--db", db],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["accepted"] == len(rows) and out["quarantined"] == 2 and out["reasons"] == {"line …: a read must be a JSON object": 2}
    missing = subprocess.run([sys.executable, "-m", "core.feeds", "replay", str(tmp_path / "nope.jsonl"), "--db", db],
                             capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr
