"""Drug storage environment: excursions, silent loggers, misplaced drugs, MKT and excursion episodes.

Inputs (all pandas, vectorised; no per-reading Python loops):
  locations: location_id, room_id, floor_id, x_m, y_m, kind (fridge/freezer/cupboard), storage_class
  readings:  location_id, ts (tz-aware), temp_c, rh_pct, optional door_open, lux
  drugs:     drug_id, name, storage_class, protect_from_light, location_id (where its tag is now)

A location is judged against every storage class present there (its own and each stored drug's),
so a fridge drug left in a CRT cupboard makes both a misplaced-drug and, if it is warm, an
excursion condition listing that drug. Limits live in rules.STORAGE_RULES (standards §2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.alarms.rules import DEFAULT_RULES, RuleSet, StorageRule
from core.errors import InvalidInput

DH_OVER_R_K = 10_000.0          # USP <1160>: ΔH/R = 83.144 kJ/mol / 8.3144 J/(mol·K) (§2.1 [R])
KELVIN = 273.15
PLAUSIBLE_TEMP_C = (-100.0, 100.0)   # [E] beyond this a logger is broken, not a fridge
FLOOR_PENALTY_M = 1e6                # ranks every other-floor location after any same-floor one

CONDITION_COLUMNS = ["kind", "key", "priority", "message", "location_id", "room_id", "floor_id", "x_m", "y_m",
                     "drug_ids", "details", "suggested_location_id"]


class StorageInputError(InvalidInput):
    """A storage frame is missing required columns."""


@dataclass(frozen=True)
class StorageEvaluation:
    conditions: pd.DataFrame    # CONDITION_COLUMNS, ready for AlarmEngine.evaluate
    status: pd.DataFrame        # one row per location: latest reading, silent, suitable (own class)
    rejected: pd.DataFrame      # readings not used, with a reason


def mean_kinetic_temperature(temps_c) -> float:
    """USP mean kinetic temperature (°C) of equally spaced readings (§2.1 [R])."""
    t = np.asarray(temps_c, dtype=float)
    if t.size == 0 or np.isnan(t).any():
        raise InvalidInput("mean kinetic temperature needs at least one reading and no gaps (NaN)")
    return _mkt_from_mean_exp(np.mean(np.exp(-DH_OVER_R_K / (t + KELVIN))))


def _mkt_from_mean_exp(mean_exp):
    return DH_OVER_R_K / -np.log(mean_exp) - KELVIN


def _require(df: pd.DataFrame, name: str, cols: tuple[str, ...]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StorageInputError(f"{name} frame lacks column(s) {missing}")


def _split_readings(readings: pd.DataFrame, known: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Valid readings sorted by (location, ts), and the rejected ones with a reason."""
    if isinstance(readings["ts"].dtype, np.dtype) and readings["ts"].dtype.kind == "M":
        raise StorageInputError("readings.ts is tz-naive: Wardsight needs tz-aware UTC times")
    r = readings.assign(ts=pd.to_datetime(readings["ts"], utc=True, errors="coerce"))
    reason = pd.Series(pd.NA, index=r.index, dtype="string")
    temp = pd.to_numeric(r["temp_c"], errors="coerce")
    lo, hi = PLAUSIBLE_TEMP_C
    reason = reason.mask(~((temp >= lo) & (temp <= hi)) & reason.isna(), "temp_c missing or outside -100..100 °C")
    reason = reason.mask(r["ts"].isna() & reason.isna(), "no timestamp")
    code = known.get_indexer(r["location_id"])
    reason = reason.mask((code < 0) & reason.isna(), "unknown location_id")
    bad = reason.notna().to_numpy()
    rejected = r[bad].assign(reason=reason[bad])
    good = r[~bad].assign(temp_c=temp[~bad])
    # lexsort on integer codes and epoch ns: far cheaper than sorting strings
    order = np.lexsort((good["ts"].to_numpy("datetime64[ns]").view("int64"), code[~bad]))
    return good.iloc[order].reset_index(drop=True), rejected


def _groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions of runs of equal codes in a sorted array."""
    if codes.size == 0:
        return np.array([], int), np.array([], int)
    cut = np.flatnonzero(np.diff(codes)) + 1
    return np.r_[0, cut], np.r_[cut - 1, codes.size - 1]


def _latest_run_start(out: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per group: position where the trailing run of `out` began (-1 if the last reading is in range)."""
    pos = np.arange(out.size)
    last_in = np.maximum.accumulate(np.where(~out, pos, -1)) if out.size else pos
    li = last_in[ends] if ends.size else ends
    run = np.where(li < starts, starts, li + 1)
    return np.where(out[ends] if ends.size else ends.astype(bool), run, -1)


def _class_state(rule: StorageRule, g: pd.DataFrame, per: dict, now: pd.Timestamp) -> dict:
    """Vectorised verdict of one storage class for every location that has readings."""
    t = g["temp_c"].to_numpy(float)
    out = (t < rule.low_c) | (t > rule.high_c)
    run = _latest_run_start(out, per["starts"], per["ends"])
    ts_ns = g["ts"].to_numpy("datetime64[ns]")
    run_s = np.where(run >= 0, (now.to_datetime64() - ts_ns[np.maximum(run, 0)]) / np.timedelta64(1, "s"), 0.0)
    last_t = t[per["ends"]]
    extreme = np.zeros(last_t.size, bool)
    if rule.extreme_low_c is not None:
        extreme |= last_t <= rule.extreme_low_c
    if rule.extreme_high_c is not None:
        extreme |= last_t >= rule.extreme_high_c
    timed = (run >= 0) & (run_s >= rule.min_duration_s)
    rh = per["rh"]
    humid = (rh > rule.max_rh_pct) if rule.max_rh_pct is not None else np.zeros(last_t.size, bool)
    mkt_bad = (per["mkt"] > rule.mkt_max_c) if rule.mkt_max_c is not None else np.zeros(last_t.size, bool)
    in_range = (last_t >= rule.low_c) & (last_t <= rule.high_c) & ~humid
    return {"extreme": extreme, "timed": timed, "run_s": run_s, "humid": humid, "mkt_bad": mkt_bad,
            "in_range": in_range}


def _per_location(g: pd.DataFrame) -> dict:
    codes = pd.factorize(g["location_id"], sort=False)[0]
    starts, ends = _groups(codes)
    e = np.exp(-DH_OVER_R_K / (g["temp_c"].to_numpy(float) + KELVIN))
    sums = np.add.reduceat(e, starts) if starts.size else np.array([])
    rh = pd.to_numeric(g["rh_pct"], errors="coerce").to_numpy(float)[ends] if "rh_pct" in g else np.full(ends.size, np.nan)
    lux = pd.to_numeric(g["lux"], errors="coerce").to_numpy(float)[ends] if "lux" in g else np.full(ends.size, np.nan)
    return {"starts": starts, "ends": ends, "location_id": g["location_id"].to_numpy()[ends],
            "mkt": _mkt_from_mean_exp(sums / (ends - starts + 1)), "rh": rh, "lux": lux}


def _status(locations: pd.DataFrame, g: pd.DataFrame, now: pd.Timestamp, rules: RuleSet):
    per = _per_location(g)
    st = locations.set_index("location_id")[["room_id", "floor_id", "x_m", "y_m", "storage_class"]].copy()
    latest = g.iloc[per["ends"]].set_index("location_id")
    st["last_ts"] = latest["ts"].reindex(st.index)
    st["temp_c"] = latest["temp_c"].reindex(st.index)
    st["rh_pct"] = pd.Series(per["rh"], index=per["location_id"]).reindex(st.index)
    st["lux"] = pd.Series(per["lux"], index=per["location_id"]).reindex(st.index)
    st["mkt_c"] = pd.Series(per["mkt"], index=per["location_id"]).reindex(st.index)
    silent_after = st["storage_class"].map({c: r.silent_after_s for c, r in rules.storage.items()}).astype(float)
    age_s = (now - st["last_ts"]).dt.total_seconds()
    st["silent"] = age_s.isna() | (age_s > silent_after.fillna(min(r.silent_after_s for r in rules.storage.values())))
    states = {c: _class_state(r, g, per, now) for c, r in rules.storage.items()}
    return st, per, states


def _verdicts(st: pd.DataFrame, per: dict, states: dict, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per (location_id, storage_class) pair: reasons the environment is unsuitable now."""
    pos = pd.Series(np.arange(len(per["location_id"])), index=per["location_id"])
    p = pairs.assign(i=pos.reindex(pairs["location_id"]).to_numpy())
    p = p[p["i"].notna() & p["storage_class"].isin(list(states))].astype({"i": int})
    cols = {k: np.zeros(len(p), dtype=float if k == "run_s" else bool)
            for k in ("extreme", "timed", "run_s", "humid", "mkt_bad")}
    for c, s in states.items():
        m = (p["storage_class"] == c).to_numpy()
        for k in cols:
            cols[k][m] = s[k][p["i"].to_numpy()[m]]
    return p.assign(**cols)


def _nearest_suitable(origins: pd.DataFrame, need: np.ndarray, st: pd.DataFrame, rules: RuleSet) -> np.ndarray:
    """For each origin row (location_id, floor_id, x_m, y_m) the nearest location suitable now for
    storage class `need[k]` (st["ok_<class>"]: compatible, reporting, latest reading in range);
    same floor first, then straight-line distance; None if there is none."""
    result = np.full(len(origins), None, dtype=object)
    for c in pd.unique(need):
        rows = np.flatnonzero(need == c)
        if f"ok_{c}" not in st:
            continue
        cand = st[st[f"ok_{c}"].to_numpy() & st["storage_class"].isin(rules.compatible.get(c, (c,))).to_numpy()]
        if cand.empty:
            continue
        o = origins.iloc[rows]
        d = np.hypot(o["x_m"].to_numpy(float)[:, None] - cand["x_m"].to_numpy(float)[None, :],
                     o["y_m"].to_numpy(float)[:, None] - cand["y_m"].to_numpy(float)[None, :])
        d = np.where(np.isnan(d), FLOOR_PENALTY_M / 2, d)
        d = d + FLOOR_PENALTY_M * (o["floor_id"].to_numpy()[:, None] != cand["floor_id"].to_numpy()[None, :])
        d = np.where(o["location_id"].to_numpy()[:, None] == cand.index.to_numpy()[None, :], np.inf, d)
        best = d.argmin(axis=1)
        found = np.isfinite(d[np.arange(len(rows)), best])
        result[rows] = np.where(found, cand.index.to_numpy()[best], None)
    return result


def _reason_text(v: pd.DataFrame, rules: RuleSet) -> pd.Series:
    """Human reason per unsuitable (location, class) pair (only flagged rows reach here)."""
    label = v["storage_class"].map({c: r.label for c, r in rules.storage.items()})
    parts = [np.where(v["extreme"], "extreme temperature", ""),
             np.where(v["timed"], "out of range for " + (v["run_s"] // 60).astype(int).astype(str) + " min", ""),
             np.where(v["humid"], "humidity too high", ""),
             np.where(v["mkt_bad"], "mean kinetic temperature too high", "")]
    joined = pd.Series([", ".join(x for x in row if x) for row in zip(*parts)], index=v.index)
    return joined + " (" + label + ")"


def storage_conditions(locations: pd.DataFrame, readings: pd.DataFrame, drugs: pd.DataFrame, now,
                       rules: RuleSet = DEFAULT_RULES) -> StorageEvaluation:
    """Excursion, silent-logger and misplaced-drug conditions at `now` (see module doc)."""
    _require(locations, "locations", ("location_id", "room_id", "floor_id", "x_m", "y_m", "storage_class"))
    _require(readings, "readings", ("location_id", "ts", "temp_c"))
    _require(drugs, "drugs", ("drug_id", "storage_class", "location_id"))
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise InvalidInput("now must be tz-aware UTC")
    g, rejected = _split_readings(readings, pd.Index(locations["location_id"]))
    st, per, states = _status(locations, g, now, rules)
    for c, s in states.items():
        ok = pd.Series(s["in_range"], index=per["location_id"]).reindex(st.index, fill_value=False)
        st[f"ok_{c}"] = ok.to_numpy(bool) & ~st["silent"].to_numpy(bool)

    stored = drugs[drugs["location_id"].isin(st.index)]
    pairs = pd.concat([st["storage_class"].reset_index(), stored[["location_id", "storage_class"]]]).drop_duplicates()
    v = _verdicts(st, per, states, pairs)
    light = _light_exposed(stored, st, rules)
    conds = [_excursions(v, light, stored, st, rules), _silent(st), _misplaced(drugs, st, rules)]
    out = pd.concat([c for c in conds if not c.empty], ignore_index=True) if any(not c.empty for c in conds) \
        else pd.DataFrame(columns=CONDITION_COLUMNS)
    if not out.empty:
        need = out["details"].map(lambda d: d.get("needs_class")).to_numpy(object)
        out["suggested_location_id"] = _nearest_suitable(out, need, st, rules)
    return StorageEvaluation(out.reindex(columns=CONDITION_COLUMNS), st.reset_index(), rejected)


def _light_exposed(stored: pd.DataFrame, st: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    if "protect_from_light" not in stored:
        return stored.iloc[:0]
    lux = st["lux"].reindex(stored["location_id"]).to_numpy(float)
    limit = stored["storage_class"].map({c: r.lux_max for c, r in rules.storage.items()}).to_numpy(float)
    return stored[stored["protect_from_light"].fillna(False).astype(bool).to_numpy() & (lux > limit)]


def _excursions(v, light, stored, st, rules) -> pd.DataFrame:
    bad = v[v["extreme"] | v["timed"] | v["humid"] | v["mkt_bad"]].copy()
    bad["reason"] = _reason_text(bad, rules)
    bad["priority"] = np.select([bad["extreme"], bad["timed"] | bad["mkt_bad"]], ["high", "medium"], "low")
    light = light.assign(reason="light-sensitive drug exposed to light", priority="low")
    if bad.empty and light.empty:
        return pd.DataFrame(columns=CONDITION_COLUMNS)
    # Only flagged locations reach the per-location assembly below (a handful per tick).
    held = stored[stored["location_id"].isin(bad["location_id"])]
    by_pair: dict = {}
    for loc, c, d in zip(held["location_id"], held["storage_class"], held["drug_id"]):
        by_pair.setdefault((loc, c), []).append(d)
    rank = {"low": 1, "medium": 2, "high": 3}
    per_loc: dict = {}
    for loc, c, reason, prio in zip(bad["location_id"], bad["storage_class"], bad["reason"], bad["priority"]):
        per_loc.setdefault(loc, []).append((c, reason, prio, by_pair.get((loc, c), [])))
    for loc, c, d in zip(light["location_id"], light["storage_class"], light["drug_id"]):
        per_loc.setdefault(loc, []).append((c, "light-sensitive drug exposed to light", "low", [d]))
    where = st.loc[list(per_loc), ["room_id", "floor_id", "x_m", "y_m", "temp_c", "rh_pct"]].to_dict("index")
    rows = []
    for loc, entries in sorted(per_loc.items()):
        worst = max(entries, key=lambda e: rank[e[2]])
        drug_ids = tuple(sorted({d for e in entries for d in e[3]}))
        w = where[loc]
        rows.append({"kind": "storage.excursion", "key": f"storage.excursion:{loc}", "priority": worst[2],
                     "location_id": loc, "room_id": w["room_id"], "floor_id": w["floor_id"], "x_m": w["x_m"],
                     "y_m": w["y_m"], "drug_ids": drug_ids,
                     "message": f"{loc}: {'; '.join(e[1] for e in entries)}" + (f"; affects {', '.join(drug_ids)}" if drug_ids else ""),
                     "details": {"reasons": [e[1] for e in entries], "temp_c": _f(w["temp_c"]),
                                 "rh_pct": _f(w["rh_pct"]), "needs_class": worst[0]}})
    return pd.DataFrame(rows)


def _f(x):
    return None if pd.isna(x) else float(x)


def _silent(st: pd.DataFrame) -> pd.DataFrame:
    s = st[st["silent"]].reset_index()
    if s.empty:
        return pd.DataFrame(columns=CONDITION_COLUMNS)
    last = s["last_ts"].astype("string").fillna("never")
    return pd.DataFrame({"kind": "storage.sensor_silent", "key": "storage.sensor_silent:" + s["location_id"],
                         "priority": "low", "message": s["location_id"] + ": logger not reporting (last reading " + last + ")",
                         "location_id": s["location_id"], "room_id": s["room_id"], "floor_id": s["floor_id"],
                         "x_m": s["x_m"], "y_m": s["y_m"], "drug_ids": [()] * len(s),
                         "details": [{"last_ts": x, "needs_class": c} for x, c in zip(last, s["storage_class"])]})


def _misplaced(drugs: pd.DataFrame, st: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    d = drugs[drugs["location_id"].notna()]
    loc_class = st["storage_class"].reindex(d["location_id"]).astype("string").fillna("?").to_numpy(object)
    pairs = {f"{c}|{lc}" for c in set(d["storage_class"]) for lc in rules.compatible.get(c, (c,))}
    ok = pd.Series(d["storage_class"].astype(str).to_numpy(object) + "|" + loc_class).isin(pairs).to_numpy()
    bad = d[~ok].reset_index(drop=True)
    if bad.empty:
        return pd.DataFrame(columns=CONDITION_COLUMNS)
    where = st.reindex(bad["location_id"])
    known = where["storage_class"].notna().to_numpy()
    name = bad["name"] if "name" in bad else bad["drug_id"]
    why = np.where(known, "stored in a " + where["storage_class"].astype("string").fillna("").to_numpy(object) + " location",
                   "not in a known storage location")
    return pd.DataFrame({"kind": "storage.drug_misplaced", "key": "storage.drug_misplaced:" + bad["drug_id"],
                         "priority": np.where(known, "medium", "low"),
                         "message": name + " (" + bad["storage_class"] + ") " + why + " at " + bad["location_id"],
                         "location_id": bad["location_id"], "room_id": where["room_id"].to_numpy(),
                         "floor_id": where["floor_id"].to_numpy(), "x_m": where["x_m"].to_numpy(),
                         "y_m": where["y_m"].to_numpy(), "drug_ids": bad["drug_id"].map(lambda x: (x,)),
                         "details": [{"needs_class": c} for c in bad["storage_class"]]})


def excursion_episodes(readings: pd.DataFrame, locations: pd.DataFrame, drugs: pd.DataFrame | None = None,
                       rules: RuleSet = DEFAULT_RULES) -> pd.DataFrame:
    """Out-of-range episodes per location (its own storage class) from a reading series.

    end = first reading back in range (or the last reading if still out: ongoing=True).
    """
    _require(locations, "locations", ("location_id", "storage_class"))
    g, _rej = _split_readings(readings, pd.Index(locations["location_id"]))
    cls = g["location_id"].map(locations.set_index("location_id")["storage_class"])
    low = cls.map({c: r.low_c for c, r in rules.storage.items()}).to_numpy(float)
    high = cls.map({c: r.high_c for c, r in rules.storage.items()}).to_numpy(float)
    t = g["temp_c"].to_numpy(float)
    out = (t < low) | (t > high)
    new_loc = g["location_id"].ne(g["location_id"].shift()).to_numpy()
    run_id = np.cumsum(new_loc | (out != np.r_[False, out[:-1]]))
    nxt_ts = g.groupby("location_id")["ts"].shift(-1)
    e = g.assign(run=run_id, out=out, nxt=nxt_ts)[out]
    if e.empty:
        return pd.DataFrame(columns=["location_id", "start", "end", "duration_s", "max_temp_c", "min_temp_c",
                                     "ongoing", "drugs_affected"])
    ep = e.groupby("run").agg(location_id=("location_id", "first"), start=("ts", "first"), last=("ts", "last"),
                              max_temp_c=("temp_c", "max"), min_temp_c=("temp_c", "min"))
    ep["nxt"] = e.drop_duplicates("run", keep="last").set_index("run")["nxt"]   # groupby.last skips NaT
    ep["ongoing"] = ep["nxt"].isna()
    ep["end"] = ep["nxt"].fillna(ep["last"])
    ep["duration_s"] = (ep["end"] - ep["start"]).dt.total_seconds()
    held = (drugs.groupby("location_id")["drug_id"].agg(lambda s: tuple(sorted(s)))
            if drugs is not None and not drugs.empty else pd.Series(dtype=object))
    ep["drugs_affected"] = ep["location_id"].map(held).map(lambda x: x if isinstance(x, tuple) else ())
    return ep[["location_id", "start", "end", "duration_s", "max_temp_c", "min_temp_c", "ongoing",
               "drugs_affected"]].reset_index(drop=True)
