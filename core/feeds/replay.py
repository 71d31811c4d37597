"""File replay for backfills and demos: JSONL or CSV reads through the same pipeline as live feeds.

    python -m core.feeds replay FILE --db URL      → {"rows": …, "accepted": …, "quarantined": …, "reasons": {…}, …}

* JSONL: one read object, or a list of them, per line; reader reads (ts, tag_id, reader_id, antenna,
  rssi_dbm[, battery_pct]) and position reads (ts, tag_id, x_m, y_m, floor_id) or omlox Location objects.
* CSV: a header naming any of ts, tag_id, reader_id, antenna, rssi_dbm, x_m, y_m, floor_id, battery_pct.

The replay clock: each chunk is processed with `now` = the newest timestamp in the chunk, never later
than the wall clock given by the caller. So presence, dwell and "unknown after" follow the file's own
time, and a read dated after the real present is still quarantined as clock skew.

Every input row is counted once: rows = accepted + quarantined + withheld (policy, or already stored
by an earlier replay) + superseded (a weaker read of the same tag in the same window, see
core.locate.strongest_per_window). Replaying a file twice stores it once.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pandas as pd

from core.errors import FeedError
from core.feeds.buffer import Batch, Committer, install_idempotency
from core.ingest import RAW_COLUMNS, _parse_ts, parse_json_lines
from core.pipeline import Pipeline

CHUNK_ROWS = 5000
SOURCE = "replay"
_VOLATILE = re.compile(r"\b[0-9A-F]{8,}\b|[-+]?\d+(?:\.\d+)?")   # ids and numbers: one reason kind


class ReplayInputError(FeedError):
    """The file cannot be read at all (missing, a directory, not CSV/JSONL text)."""


@dataclass
class ReplaySummary:
    rows: int = 0
    accepted: int = 0
    quarantined: int = 0
    withheld: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    hook_errors: int = 0

    def as_dict(self) -> dict:
        withheld = sum(self.withheld.values())
        return {"rows": self.rows, "accepted": self.accepted, "quarantined": self.quarantined,
                "reasons": dict(self.reasons.most_common()), "withheld": dict(self.withheld),
                "superseded": self.rows - self.accepted - self.quarantined - withheld,
                "hook_errors": self.hook_errors}


def reason_kind(reason: str) -> str:
    """"unknown tag E280…01" and "unknown tag E280…02" are one kind of reason."""
    return _VOLATILE.sub("…", str(reason))


def replay_file(path: str | Path, pipeline: Pipeline, *, wall_now: datetime, chunk_rows: int = CHUNK_ROWS) -> ReplaySummary:
    """Feed a JSONL or CSV file through `pipeline`; returns the counts (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise ReplayInputError(f"{path}: no such file")
    install_idempotency(pipeline)
    health = getattr(pipeline, "health", None)
    if health is not None:
        health.live = False           # historic reads: skew and lag are meaningless
    committer = Committer(pipeline, SOURCE)
    summary = ReplaySummary()
    for raw, bad in _chunks(path, chunk_rows, wall_now):
        summary.rows += len(raw) + len(bad)
        now = _chunk_clock(raw, wall_now)
        outcome = committer.commit(_batch(raw, bad, now))
        if outcome.result is None:
            summary.hook_errors += 1
            continue
        res = outcome.result
        summary.accepted += res.accepted
        summary.quarantined += res.quarantined
        summary.withheld.update(res.withheld)
        summary.reasons.update(reason_kind(r) for r in res.quarantine["reason"])
    return summary


def _batch(raw: pd.DataFrame, bad: pd.DataFrame, now: datetime) -> Batch:
    return Batch(raw=raw, now=now, quarantine=bad.assign(received_at=pd.Timestamp(now)) if len(bad) else bad)


def _chunk_clock(raw: pd.DataFrame, wall_now: datetime) -> datetime:
    wall = pd.Timestamp(wall_now).tz_convert("UTC")
    if raw.empty or "ts" not in raw.columns:
        return wall.to_pydatetime()
    ts = _parse_ts(raw["ts"])
    ts = ts[ts <= wall]
    return (ts.max() if len(ts) else wall).floor("us").to_pydatetime()


def _chunks(path: Path, chunk_rows: int, wall_now: datetime) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot read ({exc})") from exc
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or head[:1] in (b"{", b"["):
        yield from _jsonl_chunks(path, chunk_rows, wall_now)
    else:
        yield from _csv_chunks(path, chunk_rows)


def _jsonl_chunks(path: Path, chunk_rows: int, wall_now: datetime):
    lines: list[bytes] = []
    with path.open("rb") as fh:
        for line in fh:
            lines.append(line)
            if len(lines) >= chunk_rows:
                yield parse_json_lines(lines, source=SOURCE, received_at=wall_now)
                lines = []
    if lines:
        yield parse_json_lines(lines, source=SOURCE, received_at=wall_now)


def _csv_chunks(path: Path, chunk_rows: int):
    empty_bad = pd.DataFrame(columns=["received_at", "source", "reason", "raw"])
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayInputError(f"{path}: not a UTF-8 CSV file ({exc})") from exc
    if not header:
        return
    known = [c for c in header if c in RAW_COLUMNS]
    if "ts" not in known or "tag_id" not in known:
        raise ReplayInputError(f"{path}: CSV header {header[:10]} lacks ts and tag_id (expected columns {RAW_COLUMNS})")
    text_cols = {c: "str" for c in ("ts", "tag_id", "reader_id", "floor_id") if c in header}
    try:
        for chunk in pd.read_csv(path, dtype=text_cols, chunksize=chunk_rows, keep_default_na=True):
            # ts: digits are epoch ms, anything else an ISO string (validated in core.ingest)
            ts = chunk["ts"]
            num = pd.to_numeric(ts, errors="coerce")
            chunk["ts"] = ts.astype(object).where(num.isna(), num)
            yield chunk, empty_bad
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReplayInputError(f"{path}: cannot parse as CSV ({exc})") from exc
