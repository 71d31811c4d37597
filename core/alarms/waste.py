"""Medical waste rules (WHO categories, standards §3): wrong bin, wrong place, overdue, with the
member of staff who last handled it.

Inputs (pandas, vectorised):
  bins:  bin_id, accepts (iterable of categories or "a|b" text), room_id, fill_pct, optional opened_at,
         optional home_room_id (its designated place; without it a bin must stand in a disposal room)
  items: item_id, category, bin_id (None if not in a bin), room_id, generated_at, optional seen_at
  disposal_rooms: room ids designated for waste (disposal hold, sluice, ...)
  handler_trail (optional): staff_id, room_id, ts - staff presence; the handler of an event is the
  last staff member seen in the same room at or before it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from core.alarms.rules import DEFAULT_RULES, WASTE_CATEGORIES, RuleSet
from core.errors import InvalidInput

CLOSE_AT_FILL_PCT = 75.0     # WHO: close bags/containers when 3/4 full (§3.1 [R])
# Wrong-bin severity [E] from IEC 60601-1-8 Table 1 (§4.1 [R]): sharps, cytotoxic and radioactive
# items in the wrong stream can injure a handler immediately; other hazardous waste harms later.
HIGH_RISK = frozenset({"sharps", "cytotoxic", "radioactive"})
CONDITION_COLUMNS = ["kind", "key", "priority", "message", "room_id", "bin_id", "subject_id", "details"]


class WasteInputError(InvalidInput):
    """A waste frame lacks required columns."""


@dataclass(frozen=True)
class WasteEvaluation:
    conditions: pd.DataFrame
    rejected: pd.DataFrame      # item rows that cannot be judged, with a reason


def _require(df: pd.DataFrame, name: str, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise WasteInputError(f"{name} frame lacks column(s) {missing}")


_CAT_INDEX = pd.Index(WASTE_CATEGORIES)


def _accepts_matrix(bins: pd.DataFrame) -> np.ndarray:
    """bool [bin row, WHO category] - lets every item be checked with one fancy-index lookup.
    Bins rarely change what they accept, so the matrix is cached on the accepts text."""
    acc = bins["accepts"].to_numpy(dtype=object)
    if all(isinstance(a, str) for a in acc):
        return _accepts_cached(tuple(acc)).copy()
    return _accepts_build(bins["accepts"])


@functools.lru_cache(maxsize=8)
def _accepts_cached(accepts: tuple[str, ...]) -> np.ndarray:
    return _accepts_build(pd.Series(accepts, dtype=object))


def _accepts_build(accepts: pd.Series) -> np.ndarray:
    acc = accepts.map(lambda a: a.split("|") if isinstance(a, str) else list(a))
    long = pd.DataFrame({"row": np.arange(len(accepts)), "category": acc.to_numpy(object)}).explode("category")
    cat = _CAT_INDEX.get_indexer(long["category"].astype(object))
    m = np.zeros((len(accepts), len(WASTE_CATEGORIES)), bool)
    m[long["row"].to_numpy(int)[cat >= 0], cat[cat >= 0]] = True
    return m


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, errors="coerce")


def _obj(s: pd.Series) -> np.ndarray:
    return s.astype(object).to_numpy()


class _Flags:
    """Flagged rows collected as arrays; one DataFrame is built at the end (no per-part frames)."""

    def __init__(self):
        self.cols: dict[str, list] = {k: [] for k in ("kind", "key", "priority", "message", "room_id", "bin_id",
                                                      "subject_id", "event_ts", "why")}

    def add(self, kind, subject, priority, message, room, bin_id, ts, why) -> None:
        n = len(subject)
        if n == 0:
            return
        self.cols["kind"].append(np.full(n, kind, dtype=object))
        self.cols["key"].append(np.array([f"{kind}:{x}" for x in subject], dtype=object))
        for k, v in (("priority", priority), ("message", message), ("room_id", room), ("bin_id", bin_id),
                     ("subject_id", subject), ("event_ts", ts), ("why", why)):
            self.cols[k].append(np.broadcast_to(np.asarray(v, dtype=object), (n,)))

    def frame(self) -> pd.DataFrame:
        if not self.cols["kind"]:
            return pd.DataFrame({k: pd.Series(dtype=object) for k in self.cols})
        return pd.DataFrame({k: np.concatenate(v) for k, v in self.cols.items()})


def _seen_ns(items: pd.DataFrame, now_ns: int) -> np.ndarray:
    if "seen_at" not in items:
        return np.full(len(items), now_ns, dtype=np.int64)
    s = _ns(items["seen_at"])
    return np.where(s == np.iinfo(np.int64).min, now_ns, s)


def _ts_obj(ns: np.ndarray) -> np.ndarray:
    return pd.to_datetime(ns, utc=True).to_numpy(object) if len(ns) else np.array([], dtype=object)


def waste_conditions(bins: pd.DataFrame, items: pd.DataFrame, disposal_rooms: Iterable[str], now,
                     handler_trail: "pd.DataFrame | HandlerTrail | None" = None,
                     rules: RuleSet = DEFAULT_RULES) -> WasteEvaluation:
    """Wrong-bin, wrong-place and overdue conditions at `now`, each naming the last handler.

    Integer codes throughout (bin row, WHO category index, room membership); strings are built for
    flagged rows only."""
    _require(bins, "bins", ("bin_id", "accepts", "room_id", "fill_pct"))
    _require(items, "items", ("item_id", "category", "bin_id", "room_id", "generated_at"))
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise InvalidInput("now must be tz-aware UTC")
    now_ns = now.as_unit("ns").value
    accepts = _accepts_matrix(bins)
    b_id, b_room = _obj(bins["bin_id"]), _obj(bins["room_id"])
    b_index = pd.Index(b_id)
    cat = _CAT_INDEX.get_indexer(_obj(items["category"]))
    i_bin = _obj(items["bin_id"])
    has_bin = items["bin_id"].notna().to_numpy()
    brow = np.where(has_bin, b_index.get_indexer(np.where(has_bin, i_bin, "")), -1)
    reason = np.where(cat < 0, "unknown WHO category", np.where(has_bin & (brow < 0), "unknown bin_id", ""))
    bad = reason != ""
    rejected = items[bad].assign(reason=reason[bad])
    ok = ~bad
    f = _Flags()
    i_id, i_room, i_cat = _obj(items["item_id"]), _obj(items["room_id"]), _obj(items["category"])
    seen = _seen_ns(items, now_ns)
    # wrong bin: one fancy-index lookup in the accept matrix
    wb = np.flatnonzero(ok & has_bin)
    wb = wb[~accepts[brow[wb], cat[wb]]]
    c = i_cat[wb]
    prio = np.where(np.isin(c, list(HIGH_RISK)), "high", np.where(c != "general", "medium", "low"))
    f.add("waste.wrong_bin", i_id[wb], prio,
          [f"{ct} item {it} in bin {bn} that does not accept it" for ct, it, bn in zip(c, i_id[wb], i_bin[wb])],
          b_room[brow[wb]], i_bin[wb], _ts_obj(seen[wb]), "wrong bin")
    # wrong place: bins away from their place, loose items outside a disposal room
    rooms = pd.Index(list(set(disposal_rooms)), dtype=object)
    if "home_room_id" in bins:
        away = np.flatnonzero(~(bins["room_id"] == bins["home_room_id"]).fillna(False).to_numpy(bool))
    else:
        away = np.flatnonzero(rooms.get_indexer(b_room) < 0)
    f.add("waste.wrong_place", b_id[away], "low",
          [f"bin {b} outside a disposal area ({r if isinstance(r, str) else 'unknown'})" for b, r in zip(b_id[away], b_room[away])],
          b_room[away], b_id[away], now, "bin outside disposal area")
    loose = np.flatnonzero(ok & ~has_bin & (rooms.get_indexer(i_room) < 0))
    f.add("waste.wrong_place", i_id[loose], np.where(np.isin(i_cat[loose], list(HIGH_RISK)), "medium", "low"),
          [f"{ct} item {it} left outside a disposal area ({r if isinstance(r, str) else 'unknown'})"
           for ct, it, r in zip(i_cat[loose], i_id[loose], i_room[loose])],
          i_room[loose], None, _ts_obj(seen[loose]), "item outside disposal area")
    # overdue: WHO storage limit per category (§3.1 [R]), bins 3/4 full, bins open too long
    lim = np.array([rules.waste[k].max_storage_s if k in rules.waste and rules.waste[k].max_storage_s is not None
                    else np.inf for k in WASTE_CATEGORIES])
    gen = _ns(items["generated_at"])
    age_s = np.where(gen == np.iinfo(np.int64).min, np.nan, (now_ns - gen) / 1e9)
    old = np.flatnonzero(ok & (age_s > lim[np.maximum(cat, 0)]))
    f.add("waste.overdue", i_id[old], "low",
          [f"{ct} item {it} held {a / 3600:.1f} h, beyond its storage limit" for ct, it, a in zip(i_cat[old], i_id[old], age_s[old])],
          i_room[old], i_bin[old], _ts_obj(seen[old]), "held beyond storage limit")
    fill = pd.to_numeric(bins["fill_pct"], errors="coerce").to_numpy(float, na_value=np.nan)
    full = np.flatnonzero(fill >= CLOSE_AT_FILL_PCT)
    f.add("waste.overdue", b_id[full], "low",
          [f"bin {b} is {round(x)} % full: close at 3/4 and collect" for b, x in zip(b_id[full], fill[full])],
          b_room[full], b_id[full], now, "3/4 full, not collected")
    if "opened_at" in bins:
        strictest = np.where(accepts, lim[None, :], np.inf).min(axis=1)     # most perishable accepted category
        opened = _ns(bins["opened_at"])
        b_age = np.where(opened == np.iinfo(np.int64).min, np.nan, (now_ns - opened) / 1e9)
        aged = np.flatnonzero((b_age > strictest) & ~(fill >= CLOSE_AT_FILL_PCT))
        f.add("waste.overdue", b_id[aged], "low", [f"bin {b} open beyond its storage limit" for b in b_id[aged]],
              b_room[aged], b_id[aged], now, "bin open beyond storage limit")
    c = f.frame()
    handler = last_handler(c, handler_trail).to_numpy(object) if len(c) else np.array([], dtype=object)
    c["details"] = [{"reason": w, "last_handler": h, "event_ts": str(t)} for w, h, t in zip(c["why"], handler, c["event_ts"])]
    has = pd.notna(handler)
    if has.any():
        c.loc[has, "message"] = [f"{m} (last handled by {h})" for m, h in zip(c.loc[has, "message"], handler[has])]
    return WasteEvaluation(c.reindex(columns=CONDITION_COLUMNS).reset_index(drop=True), rejected)


def _ns(s: pd.Series) -> np.ndarray:
    """Epoch ns (int64) of any datetime-like Series; NaT -> int64 min."""
    return _utc(s).astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")


class HandlerTrail:
    """A staff presence trail (staff_id, room_id, ts) prepared once for many handler look-ups: rows
    sorted by one float key, room code * span + seconds since the trail's start, so every event is
    answered by a single np.searchsorted (no per-room groupby, no merge on strings). The alarm
    service rebuilds it only when its trail grows."""

    def __init__(self, trail: pd.DataFrame):
        self.rooms = pd.Index(pd.unique(trail["room_id"].dropna().astype(object)))
        room = self.rooms.get_indexer(trail["room_id"].astype(object))
        ns = _ns(trail["ts"])
        ok = (room >= 0) & (ns != np.iinfo(np.int64).min)
        room, ns, staff = room[ok], ns[ok], trail["staff_id"].to_numpy(object)[ok]
        self.t0 = int(ns.min()) if ns.size else 0
        self.span_s = (int(ns.max()) - self.t0) / 1e9 + 1.0 if ns.size else 1.0
        key = room * self.span_s + (ns - self.t0) / 1e9
        order = np.argsort(key, kind="stable")
        self.key, self.room, self.ns, self.staff = key[order], room[order], ns[order], staff[order]

    def __len__(self) -> int:
        return int(self.key.size)

    def last_before(self, room_id: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
        e_room = self.rooms.get_indexer(np.asarray(room_id, dtype=object))
        e_key = e_room * self.span_s + np.clip((ts_ns - self.t0) / 1e9, -0.5, self.span_s - 0.5)
        pos = np.searchsorted(self.key, e_key, side="right") - 1
        p = np.maximum(pos, 0)
        found = (pos >= 0) & (e_room >= 0) & (self.room[p] == e_room) & (self.ns[p] <= ts_ns) if self.key.size \
            else np.zeros(len(e_room), bool)
        return np.where(found, self.staff[p] if self.key.size else None, None)


def last_handler(events: pd.DataFrame, trail: pd.DataFrame | HandlerTrail | None) -> pd.Series:
    """Per event (room_id, event_ts): the last staff member seen in that room at or before it."""
    if trail is None or len(trail) == 0 or events.empty:
        return pd.Series(None, index=events.index, dtype=object)
    prepared = trail if isinstance(trail, HandlerTrail) else HandlerTrail(trail)
    staff = prepared.last_before(events["room_id"].to_numpy(dtype=object), _ns(events["event_ts"]))
    return pd.Series(staff, index=events.index, dtype=object)
