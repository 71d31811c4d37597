"""Presence per tag: where it is (floor, room, bed), `since` (when that place last changed) apart from
`last_seen` (when the tag last reported), and the derived state Present / Stale / Unknown.

Hysteresis: a tag moves to a new place only after `change_reads` consecutive reads agree on it, so
one stray read (a reflection, a read through a wall) never flips a room. The tracker holds its state
in numpy arrays indexed by tag and processes a batch in "rounds" (the k-th read of every tag in the
batch together), so the cost is whole-array work per round, not Python per read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from core.models import PresenceState

NONE = -1


def latest_per_tag(reads: pd.DataFrame, ts_col: str = "ts", tag_col: str = "tag_id") -> pd.DataFrame:
    """The newest read of every tag (ties: the later row), one row per tag in order of first
    appearance (reads without a tag id form one group, first). Sorting by time first matters:
    `drop_duplicates(keep="last")` on arrival order returns stale rows for late-arriving reads.

    O(n) without a sort: the newest time per tag by `np.maximum.at`, then the last row holding it."""
    if reads.empty:
        return reads
    codes, uniques = pd.factorize(reads[tag_col].array)
    codes = codes.astype(np.int64) + 1                     # group 0: reads without a tag id
    ts = _as_int64(reads[ts_col])
    if ts is None:                                         # times that are not numbers: sort instead
        order = np.lexsort((np.arange(len(reads)), reads[ts_col].to_numpy(), codes))
        last = np.r_[codes[order][1:] != codes[order][:-1], True]
        return reads.iloc[order[last]].reset_index(drop=True)
    newest = np.full(len(uniques) + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(newest, codes, ts)
    cand = np.flatnonzero(ts == newest[codes])[::-1]       # rows holding their tag's newest time, last first
    _, first = np.unique(codes[cand], return_index=True)    # per tag (ascending code): the last such row
    return reads.iloc[cand[first]].reset_index(drop=True)


def _as_int64(s: pd.Series) -> np.ndarray | None:
    """Times as comparable int64 (datetimes in their own unit, NaT lowest), or None otherwise."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return np.asarray(s.array.asi8, dtype=np.int64)
    if pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans:
        return s.to_numpy(dtype=np.int64)
    return None


def presence_state(last_seen_ms: np.ndarray, now_ms: int, stale_after_s: float, unknown_after_s: float) -> np.ndarray:
    """Vectorised Present / Stale / Unknown from last-seen times (NaN/absent → Unknown)."""
    age_s = (now_ms - np.asarray(last_seen_ms, dtype=float)) / 1000.0
    return np.select([~np.isfinite(age_s) | (age_s > unknown_after_s), age_s > stale_after_s],
                     [PresenceState.UNKNOWN.value, PresenceState.STALE.value], PresenceState.PRESENT.value)


@dataclass
class PresenceUpdate:
    changes: pd.DataFrame    # tag_id, entity_id, ts_ms, floor_id, room_id, bed_id, x_m, y_m
    current: pd.DataFrame    # presence rows of every tag seen in the batch (for the store)


class PresenceTracker:
    """Incremental presence for a fixed set of tags."""

    def __init__(self, tags: pd.DataFrame, change_reads: int = 3):
        # object dtype on purpose: its hash table is built once; an arrow-string index converts
        # itself and rebuilds one on every get_indexer (~20 ms a batch at 50 k tags)
        self.tag_ids = pd.Index(tags["tag_id"].astype(str).to_numpy(dtype=object), dtype=object)
        self.entity_ids = tags["entity_id"].to_numpy(dtype=object)
        self.change_reads = max(1, int(change_reads))
        n = len(self.tag_ids)
        self.places = pd.Index([])                     # interned (floor, room, bed) tuples
        self._place_list: list[tuple] = []
        self._place_keys = pd.Index(np.empty(0, dtype=np.int64))
        self._place_table: np.ndarray | None = None
        self._parts = [pd.Index([], dtype=object) for _ in range(3)]
        self.place = np.full(n, NONE, dtype=np.int64)
        self.cand = np.full(n, NONE, dtype=np.int64)
        self.cand_count = np.zeros(n, dtype=np.int32)
        self.since_ms = np.zeros(n, dtype=np.int64)
        self.last_seen_ms = np.full(n, -1, dtype=np.int64)
        self.x = np.full(n, np.nan)
        self.y = np.full(n, np.nan)
        self.known = np.zeros(n, dtype=bool)           # a place is claimed (not Unknown)

    # ---------- places ----------
    # A place is an interned (floor, room, bed) triple. Each part is coded against its own growing
    # index and the three codes are packed into one int64 key, so interning a batch is a few hash
    # look-ups in C rather than a Python tuple per read.
    _PART_BITS = 21

    def _intern(self, floors, rooms, beds) -> np.ndarray:
        # Missing parts become None: a NaN bed (a frame read back from the DB, a str column) must be
        # the same place as None, or a restart would fake a move.
        floors, rooms, beds = (_none_for_missing(v) for v in (floors, rooms, beds))
        parts = [self._part_codes(k, v) for k, v in enumerate((floors, rooms, beds))]
        key = (parts[0] << (2 * self._PART_BITS)) | (parts[1] << self._PART_BITS) | parts[2]
        idx = self._place_keys.get_indexer(key) if len(self._place_keys) else np.full(key.size, -1)
        if (idx < 0).any():
            miss = idx < 0
            new_keys, first = np.unique(key[miss], return_index=True)
            new_keys = new_keys[np.argsort(first)]            # first-seen order, as before
            rows = np.flatnonzero(miss)[np.sort(first)]
            f, r, b = (np.asarray(v, dtype=object) for v in (floors, rooms, beds))
            self._place_list += list(zip(f[rows], r[rows], b[rows]))
            self._place_table = None
            self._place_keys = self._place_keys.append(pd.Index(new_keys))
            self.places = pd.Index(self._place_list, tupleize_cols=False)
            idx = self._place_keys.get_indexer(key)
        return idx.astype(np.int64)

    def _part_codes(self, k: int, values) -> np.ndarray:
        """Codes of one place part; missing values arrive as None (see `_intern`) and are coded
        through the stand-in `_NONE`, since a hash index would treat None specially."""
        vals = np.array(values, dtype=object)
        vals[np.equal(vals, None)] = _NONE
        known = self._parts[k]
        codes = known.get_indexer(vals) if len(known) else np.full(vals.size, -1)
        if (codes < 0).any():
            new = pd.unique(vals[codes < 0])
            self._parts[k] = known = known.append(pd.Index(new, dtype=object))
            if len(known) >= 1 << self._PART_BITS:
                raise OverflowError("more than 2 million distinct floors, rooms or beds")
            codes = known.get_indexer(vals)
        return codes.astype(np.int64)

    def place_of(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._place_table is None:
            self._place_table = np.array(self._place_list + [(None, None, None)], dtype=object).reshape(-1, 3)
        table = self._place_table
        rows = table[np.where(codes < 0, len(table) - 1, codes)]
        return rows[:, 0], rows[:, 1], rows[:, 2]

    # ---------- restore ----------
    def restore(self, presence: pd.DataFrame) -> None:
        """Continue from stored presence (after a restart) so `since` survives."""
        if presence.empty:
            return
        idx = self.tag_ids.get_indexer(presence["tag_id"].astype(str))
        ok = idx >= 0
        p = presence[ok]
        i = idx[ok]
        self.place[i] = self._intern(p["floor_id"], p["room_id"], p["bed_id"])
        self.since_ms[i] = p["since_ms"].to_numpy()
        self.last_seen_ms[i] = p["last_seen_ms"].to_numpy()
        self.x[i], self.y[i] = p["x_m"].to_numpy(dtype=float), p["y_m"].to_numpy(dtype=float)
        self.known[i] = p["room_id"].notna().to_numpy()

    # ---------- update ----------
    def update(self, located: pd.DataFrame) -> PresenceUpdate:
        """Apply located reads (any order); reads older than a tag's last_seen do not move it."""
        empty = pd.DataFrame(columns=["tag_id", "entity_id", "ts_ms", "floor_id", "room_id", "bed_id", "x_m", "y_m"])
        if located.empty:
            return PresenceUpdate(empty, self._rows(np.empty(0, dtype=np.int64)))
        ti = self.tag_ids.get_indexer(located["tag_id"].astype(str))
        keep = ti >= 0
        loc = located[keep]
        ti = ti[keep]
        ts_ms = loc["ts"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        pl = self._intern(loc["floor_id"], loc["room_id"], loc["bed_id"])
        xs, ys = loc["x_m"].to_numpy(dtype=float), loc["y_m"].to_numpy(dtype=float)
        order = np.lexsort((ts_ms, ti))
        ti, ts_ms, pl, xs, ys = ti[order], ts_ms[order], pl[order], xs[order], ys[order]
        rank = _rank_within(ti)
        moved = [self._round(ti[rank == r], ts_ms[rank == r], pl[rank == r], xs[rank == r], ys[rank == r])
                 for r in range(int(rank.max()) + 1 if rank.size else 0)]
        changes = empty
        if moved:
            tags, when, codes, cx, cy = (np.concatenate(col) for col in zip(*moved))
            if tags.size:
                f, rm, b = self.place_of(codes)
                changes = pd.DataFrame({"tag_id": self.tag_ids.to_numpy()[tags], "entity_id": self.entity_ids[tags],
                                        "ts_ms": when, "floor_id": _obj(f), "room_id": _obj(rm), "bed_id": _obj(b), "x_m": cx, "y_m": cy})
        return PresenceUpdate(changes, self._rows(np.unique(ti)))

    def _round(self, t, ts, pl, xs, ys) -> tuple[np.ndarray, ...]:
        """One read per tag: refresh last_seen; count agreeing reads for a new place; move at N."""
        fresh = ts >= self.last_seen_ms[t]
        t, ts, pl, xs, ys = t[fresh], ts[fresh], pl[fresh], xs[fresh], ys[fresh]
        self.last_seen_ms[t] = ts
        same = pl == self.place[t]
        first = ~self.known[t]
        self.cand_count[t[same]] = 0
        stay_x = same
        self.x[t[stay_x]], self.y[t[stay_x]] = xs[stay_x], ys[stay_x]
        other = ~same
        to, plo = t[other], pl[other]
        cont = self.cand[to] == plo
        self.cand_count[to] = np.where(cont, self.cand_count[to] + 1, 1)
        self.cand[to] = plo
        move = other & ((self.cand_count[t] >= self.change_reads) | first)
        mt = t[move]
        self.place[mt], self.since_ms[mt] = pl[move], ts[move]
        self.x[mt], self.y[mt] = xs[move], ys[move]
        self.known[mt] = True
        self.cand[mt], self.cand_count[mt] = NONE, 0
        return mt, ts[move], pl[move], xs[move], ys[move]

    def expire(self, now_ms: int, unknown_after_s: float) -> pd.DataFrame:
        """Tags silent longer than `unknown_after_s` lose their place: one change row each
        (room None at last_seen + unknown_after_s), so history says "unknown from then"."""
        lost = self.known & (self.last_seen_ms >= 0) & ((now_ms - self.last_seen_ms) > unknown_after_s * 1000)
        i = np.flatnonzero(lost)
        self.known[i] = False
        when = self.last_seen_ms[i] + int(unknown_after_s * 1000)
        self.place[i], self.since_ms[i] = NONE, when
        return pd.DataFrame({"tag_id": self.tag_ids.to_numpy()[i], "entity_id": self.entity_ids[i], "ts_ms": when,
                             "floor_id": None, "room_id": None, "bed_id": None, "x_m": np.nan, "y_m": np.nan})

    def _rows(self, i: np.ndarray) -> pd.DataFrame:
        f, r, b = self.place_of(self.place[i])
        return pd.DataFrame({"tag_id": self.tag_ids.to_numpy()[i], "entity_id": self.entity_ids[i],
                             "floor_id": _obj(f), "room_id": _obj(r), "bed_id": _obj(b), "x_m": self.x[i], "y_m": self.y[i],
                             "since_ms": self.since_ms[i], "last_seen_ms": self.last_seen_ms[i]})

    def snapshot(self) -> pd.DataFrame:
        """Presence of every tag ever seen."""
        return self._rows(np.flatnonzero(self.last_seen_ms >= 0))


_NONE = object()


def _none_for_missing(values) -> np.ndarray:
    vals = np.array(values, dtype=object)
    vals[pd.isna(vals)] = None
    return vals


def _obj(a) -> pd.Series:
    """Object Series that keeps None as None (pandas 3 would infer a str dtype with NaN)."""
    return pd.Series(np.asarray(a, dtype=object), dtype=object)


def _rank_within(sorted_codes: np.ndarray) -> np.ndarray:
    """0,1,2… within runs of equal codes in a sorted array."""
    if sorted_codes.size == 0:
        return sorted_codes
    start = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    run_start = np.maximum.accumulate(np.where(start, np.arange(sorted_codes.size), 0))
    return np.arange(sorted_codes.size) - run_start


def state_at(now: datetime, last_seen_ms, stale_after_s: float, unknown_after_s: float) -> np.ndarray:
    return presence_state(np.asarray(last_seen_ms, dtype=float), int(now.timestamp() * 1000), stale_after_s, unknown_after_s)
