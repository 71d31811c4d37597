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
    """bool [bin row, WHO category] - lets every item be checked with one fancy-index lookup."""
    acc = bins["accepts"].map(lambda a: a.split("|") if isinstance(a, str) else list(a))
    long = pd.DataFrame({"row": np.arange(len(bins)), "category": acc.to_numpy(object)}).explode("category")
    cat = _CAT_INDEX.get_indexer(long["category"].astype(object))
    m = np.zeros((len(bins), len(WASTE_CATEGORIES)), bool)
    m[long["row"].to_numpy(int)[cat >= 0], cat[cat >= 0]] = True
    return m


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, errors="coerce")


def _split_items(items: pd.DataFrame, bins: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    reason = pd.Series(pd.NA, index=items.index, dtype="string")
    reason = reason.mask(~items["category"].isin(WASTE_CATEGORIES), "unknown WHO category")
    unknown_bin = items["bin_id"].notna() & ~items["bin_id"].isin(bins["bin_id"])
    reason = reason.mask(unknown_bin & reason.isna(), "unknown bin_id")
    bad = reason.notna()
    return items[~bad], items[bad].assign(reason=reason[bad])


def _frame(kind: str, keys, priority, message, room_id, bin_id, subject_id, ts, why) -> pd.DataFrame:
    return pd.DataFrame({"kind": kind, "key": keys, "priority": priority, "message": message, "room_id": room_id,
                         "bin_id": bin_id, "subject_id": subject_id, "event_ts": ts, "why": why})


def _wrong_bin(items: pd.DataFrame, bins: pd.DataFrame, accepts: np.ndarray, now) -> pd.DataFrame:
    inbin = items[items["bin_id"].notna()]
    row = pd.Index(bins["bin_id"]).get_indexer(inbin["bin_id"])
    ok = accepts[row, _CAT_INDEX.get_indexer(inbin["category"])]
    bad = inbin[~ok].assign(room_id=bins["room_id"].to_numpy(object)[row[~ok]])
    prio = np.select([bad["category"].isin(HIGH_RISK), bad["category"] != "general"], ["high", "medium"], "low")
    return _frame("waste.wrong_bin", "waste.wrong_bin:" + bad["item_id"], prio,
                  bad["category"] + " item " + bad["item_id"] + " in bin " + bad["bin_id"] + " that does not accept it",
                  bad["room_id"], bad["bin_id"], bad["item_id"], _seen(bad, now), "wrong bin")


def _seen(df: pd.DataFrame, now) -> pd.Series:
    return _utc(df["seen_at"]).fillna(now) if "seen_at" in df else pd.Series(now, index=df.index)


def _wrong_place(items, bins, disposal_rooms, now) -> pd.DataFrame:
    """Loose items outside a disposal room; bins away from their designated place (their
    `home_room_id` when given - e.g. a sharps box at the point of use in a bay - else any disposal room)."""
    rooms = set(disposal_rooms)
    if "home_room_id" in bins:
        b = bins[bins["room_id"].ne(bins["home_room_id"]).fillna(True).to_numpy(bool)]
    else:
        b = bins[~bins["room_id"].isin(rooms)]
    loose = items[items["bin_id"].isna() & ~items["room_id"].isin(rooms)]
    return pd.concat([
        _frame("waste.wrong_place", "waste.wrong_place:" + b["bin_id"], "low",
               "bin " + b["bin_id"] + " outside a disposal area (" + b["room_id"].astype("string").fillna("unknown") + ")",
               b["room_id"], b["bin_id"], b["bin_id"], pd.Series(now, index=b.index), "bin outside disposal area"),
        _frame("waste.wrong_place", "waste.wrong_place:" + loose["item_id"],
               np.where(loose["category"].isin(HIGH_RISK), "medium", "low"),
               loose["category"] + " item " + loose["item_id"] + " left outside a disposal area ("
               + loose["room_id"].astype("string").fillna("unknown") + ")",
               loose["room_id"], None, loose["item_id"], _seen(loose, now), "item outside disposal area")])


def _overdue(items, bins, accepts, now, rules: RuleSet) -> pd.DataFrame:
    limit = items["category"].map({c: r.max_storage_s for c, r in rules.waste.items()}).astype(float)
    age_s = (now - _utc(items["generated_at"])).dt.total_seconds()
    old = items[(age_s > limit).to_numpy()]
    old_h = (age_s[old.index] / 3600).round(1).astype(str)
    frames = [_frame("waste.overdue", "waste.overdue:" + old["item_id"], "low",
                     old["category"] + " item " + old["item_id"] + " held " + old_h + " h, beyond its storage limit",
                     old["room_id"], old["bin_id"], old["item_id"], _seen(old, now), "held beyond storage limit")]
    fill = pd.to_numeric(bins["fill_pct"], errors="coerce")
    full = bins[(fill >= CLOSE_AT_FILL_PCT).to_numpy()]
    frames.append(_frame("waste.overdue", "waste.overdue:" + full["bin_id"], "low",
                         "bin " + full["bin_id"] + " is " + fill[full.index].round().astype(int).astype(str)
                         + " % full: close at 3/4 and collect", full["room_id"], full["bin_id"], full["bin_id"],
                         pd.Series(now, index=full.index), "3/4 full, not collected"))
    if "opened_at" in bins:
        lim = np.array([rules.waste[c].max_storage_s if c in rules.waste and rules.waste[c].max_storage_s
                        else np.inf for c in WASTE_CATEGORIES])
        strictest = np.where(accepts, lim[None, :], np.inf).min(axis=1)   # most perishable accepted category
        b_age = (now - _utc(bins["opened_at"])).dt.total_seconds().to_numpy(float)
        aged = bins[(b_age > strictest) & ~(fill >= CLOSE_AT_FILL_PCT).to_numpy()]
        frames.append(_frame("waste.overdue", "waste.overdue:" + aged["bin_id"], "low",
                             "bin " + aged["bin_id"] + " open beyond its storage limit", aged["room_id"], aged["bin_id"],
                             aged["bin_id"], pd.Series(now, index=aged.index), "bin open beyond storage limit"))
    return pd.concat(frames)


def _ns(s: pd.Series) -> np.ndarray:
    """Epoch ns (int64) of any datetime-like Series; NaT -> int64 min."""
    return _utc(s).astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")


def last_handler(events: pd.DataFrame, trail: pd.DataFrame | None) -> pd.Series:
    """Per event (room_id, event_ts): the last staff member seen in that room at or before it.

    One sorted key per trail row, room code * span + seconds since the trail's start, so every event
    is answered by a single np.searchsorted (no per-room groupby, no merge on strings)."""
    if trail is None or trail.empty or events.empty:
        return pd.Series(None, index=events.index, dtype=object)
    rooms = pd.Index(pd.unique(events["room_id"].dropna().astype(object)))
    t_room = rooms.get_indexer(trail["room_id"].astype(object))      # -1: a room with no event
    t_ns = _ns(trail["ts"])
    ok = (t_room >= 0) & (t_ns != np.iinfo(np.int64).min)
    if not ok.any():
        return pd.Series(None, index=events.index, dtype=object)
    t_room, t_ns, staff = t_room[ok], t_ns[ok], trail["staff_id"].to_numpy(object)[ok]
    t0 = t_ns.min()
    span_s = (t_ns.max() - t0) / 1e9 + 1.0
    t_key = t_room * span_s + (t_ns - t0) / 1e9
    order = np.argsort(t_key, kind="stable")
    t_key, t_room, t_ns, staff = t_key[order], t_room[order], t_ns[order], staff[order]
    e_room = rooms.get_indexer(events["room_id"].astype(object))
    e_ns = _ns(events["event_ts"])
    e_key = e_room * span_s + np.clip((e_ns - t0) / 1e9, -0.5, span_s - 0.5)
    pos = np.searchsorted(t_key, e_key, side="right") - 1
    p = np.maximum(pos, 0)
    found = (pos >= 0) & (e_room >= 0) & (t_room[p] == e_room) & (t_ns[p] <= e_ns)
    return pd.Series(np.where(found, staff[p], None), index=events.index, dtype=object)


def waste_conditions(bins: pd.DataFrame, items: pd.DataFrame, disposal_rooms: Iterable[str], now,
                     handler_trail: pd.DataFrame | None = None, rules: RuleSet = DEFAULT_RULES) -> WasteEvaluation:
    """Wrong-bin, wrong-place and overdue conditions at `now`, each naming the last handler."""
    _require(bins, "bins", ("bin_id", "accepts", "room_id", "fill_pct"))
    _require(items, "items", ("item_id", "category", "bin_id", "room_id", "generated_at"))
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise InvalidInput("now must be tz-aware UTC")
    good, rejected = _split_items(items, bins)
    accepts = _accepts_matrix(bins)
    parts = [_wrong_bin(good, bins, accepts, now), _wrong_place(good, bins, disposal_rooms, now),
             _overdue(good, bins, accepts, now, rules)]
    c = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) \
        else _frame("waste.overdue", [], [], [], [], [], [], [], [])
    c["handler"] = last_handler(c, handler_trail).to_numpy()
    c["details"] = [{"reason": w, "last_handler": h, "event_ts": str(t)}
                    for w, h, t in zip(c["why"], c["handler"], c["event_ts"])]
    has = c["handler"].notna()
    if has.any():
        c.loc[has, "message"] = c.loc[has, "message"] + " (last handled by " + c.loc[has, "handler"].astype(str) + ")"
    return WasteEvaluation(c.reindex(columns=CONDITION_COLUMNS).reset_index(drop=True), rejected)
