"""Drug storage environment: excursions, silent loggers, misplaced drugs, MKT and excursion episodes.

Inputs (all pandas, vectorised; no per-reading Python loops):
  locations: location_id, room_id, floor_id, x_m, y_m, kind (fridge/freezer/cupboard), storage_class
  readings:  location_id, ts (tz-aware), temp_c, rh_pct, optional door_open, lux
  drugs:     drug_id, name, storage_class, protect_from_light, location_id (where its tag is now)

A location is judged against its own storage class and the class of every drug stored there that
the location suits; a fridge drug left in a CRT cupboard is one misplaced-drug condition (not also
an excursion of the cupboard: one problem, one alarm). Limits live in rules.STORAGE_RULES (standards §2).
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


_NO_RUN = np.int64(-1)
_NEVER = np.iinfo(np.int64).min


def _opt(values) -> np.ndarray:
    """None -> NaN, so a missing limit compares False."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


class StorageState:
    """Incremental drug-storage state on integer codes: per location the latest reading, the start of
    the trailing out-of-range run for every storage class, and running MKT sums.

    `add(readings)` costs O(new readings); `evaluate(drugs, now)` costs O(locations + drugs) with
    Python only for the flagged handful. The alarm service keeps one across ticks; the one-shot
    `storage_conditions` builds a fresh one per call. Readings older than a location's latest one
    are kept out of the run state (they cannot change "how long has it been out").
    """

    def __init__(self, locations: pd.DataFrame, rules: RuleSet = DEFAULT_RULES):
        _require(locations, "locations", ("location_id", "room_id", "floor_id", "x_m", "y_m", "storage_class"))
        self.rules = rules
        self.loc = locations.reset_index(drop=True)
        self.index = pd.Index(self.loc["location_id"].astype(str))
        self.classes = pd.Index(list(rules.storage))
        rs = [rules.storage[c] for c in self.classes]
        self.loc_cls = self.classes.get_indexer(self.loc["storage_class"].astype(str))
        self.low, self.high = _opt(r.low_c for r in rs), _opt(r.high_c for r in rs)
        self.ext_low, self.ext_high = _opt(r.extreme_low_c for r in rs), _opt(r.extreme_high_c for r in rs)
        self.max_rh, self.mkt_max = _opt(r.max_rh_pct for r in rs), _opt(r.mkt_max_c for r in rs)
        self.min_dur, self.lux_max = _opt(r.min_duration_s for r in rs), _opt(r.lux_max for r in rs)
        silent = _opt(r.silent_after_s for r in rs)
        self.silent_after = np.where(self.loc_cls >= 0, silent[np.maximum(self.loc_cls, 0)], silent.min())
        self.compat = np.array([[lc in rules.compatible.get(c, (c,)) for lc in self.classes] for c in self.classes])
        n, k = len(self.loc), len(self.classes)
        self.last_ns = np.full(n, _NEVER, dtype=np.int64)
        self.last_temp, self.last_rh, self.last_lux = (np.full(n, np.nan) for _ in range(3))
        self.run_start = np.full((n, k), _NO_RUN, dtype=np.int64)
        self.exp_sum, self.count = np.zeros(n), np.zeros(n)
        self.x, self.y = self.loc["x_m"].to_numpy(float), self.loc["y_m"].to_numpy(float)
        self.floor = self.loc["floor_id"].astype(object).to_numpy()
        self.names = self.index.to_numpy(object)
        self.room = self.loc["room_id"].astype(object).to_numpy()
        self.cls_name = self.loc["storage_class"].astype(object).to_numpy()

    # ------------------------------------------------------------ readings
    def add(self, readings: pd.DataFrame) -> pd.DataFrame:
        """Apply new readings; returns the rejected ones with a reason."""
        _require(readings, "readings", ("location_id", "ts", "temp_c"))
        if readings.empty:
            return readings.assign(reason=pd.Series(dtype="string"))
        if isinstance(readings["ts"].dtype, np.dtype) and readings["ts"].dtype.kind == "M":
            raise StorageInputError("readings.ts is tz-naive: Wardsight needs tz-aware UTC times")
        ts = pd.to_datetime(readings["ts"], utc=True, errors="coerce")
        temp = pd.to_numeric(readings["temp_c"], errors="coerce").to_numpy(float, na_value=np.nan)
        code = self.index.get_indexer(readings["location_id"].astype(object))
        lo, hi = PLAUSIBLE_TEMP_C
        reason = np.full(len(readings), None, dtype=object)
        reason[code < 0] = "unknown location_id"
        reason[ts.isna().to_numpy()] = "no timestamp"
        reason[~((temp >= lo) & (temp <= hi))] = "temp_c missing or outside -100..100 °C"
        bad = reason != None  # noqa: E711 - elementwise on an object array
        ts_ns = ts.to_numpy("datetime64[ns]").view("int64")
        order = np.flatnonzero(~bad)
        order = order[np.lexsort((ts_ns[order], code[order]))]
        rh = _num(readings, "rh_pct")
        lux = _num(readings, "lux")
        self._apply(code[order], ts_ns[order], temp[order], rh[order], lux[order])
        return readings[bad].assign(reason=reason[bad])

    def _apply(self, code, ts_ns, temp, rh, lux) -> None:
        fresh = ts_ns > self.last_ns[code]
        code, ts_ns, temp, rh, lux = code[fresh], ts_ns[fresh], temp[fresh], rh[fresh], lux[fresh]
        if code.size == 0:
            return
        starts, ends = _groups(code)
        g = code[ends]
        self.last_ns[g], self.last_temp[g], self.last_rh[g], self.last_lux[g] = ts_ns[ends], temp[ends], rh[ends], lux[ends]
        self.exp_sum[g] += np.add.reduceat(np.exp(-DH_OVER_R_K / (temp + KELVIN)), starts)
        self.count[g] += ends - starts + 1
        for c in range(len(self.classes)):
            out = (temp < self.low[c]) | (temp > self.high[c])
            run = _latest_run_start(out, starts, ends)
            prev = self.run_start[g, c]
            whole = run == starts                       # the batch continues an earlier run
            self.run_start[g, c] = np.where(run < 0, _NO_RUN,
                                            np.where(whole & (prev != _NO_RUN), prev, ts_ns[np.maximum(run, 0)]))

    # ------------------------------------------------------------ verdicts
    def evaluate(self, drugs: pd.DataFrame, now, rejected: pd.DataFrame | None = None, *,
                 with_status: bool = True) -> StorageEvaluation:
        """Conditions at `now` for `drugs` (drug_id, storage_class, location_id where its tag is);
        with_status=False skips the per-location status table (the service's hot path)."""
        _require(drugs, "drugs", ("drug_id", "storage_class", "location_id"))
        now = pd.Timestamp(now)
        if now.tzinfo is None:
            raise InvalidInput("now must be tz-aware UTC")
        now_ns = now.as_unit("ns").value
        v = self._verdicts(now_ns)
        dl = self.index.get_indexer(drugs["location_id"].astype(object))
        dc = self.classes.get_indexer(drugs["storage_class"].astype(object))
        need = np.zeros_like(v["flag"])
        own = self.loc_cls >= 0
        need[np.flatnonzero(own), self.loc_cls[own]] = True
        placed = (dl >= 0) & (dc >= 0)
        # A drug in a location of a compatible class adds its own limits there; a drug in an
        # unsuitable location is one storage.drug_misplaced alarm, not also an excursion of that place.
        suits = placed & (self.loc_cls[np.maximum(dl, 0)] >= 0) \
            & self.compat[np.maximum(dc, 0), np.maximum(self.loc_cls[np.maximum(dl, 0)], 0)]
        need[dl[suits], dc[suits]] = True
        flag = need & v["flag"] & v["has"][:, None]
        light = suits & drugs["protect_from_light"].fillna(False).astype(bool).to_numpy() \
            if "protect_from_light" in drugs else np.zeros(len(drugs), bool)
        light &= self.last_lux[np.maximum(dl, 0)] > self.lux_max[np.maximum(dc, 0)]
        parts = [self._excursions(v, flag, drugs, dl, dc, suits, light), self._silent(v["silent"]),
                 self._misplaced(drugs, dl, dc)]
        parts = [p for p in parts if not p.empty]
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CONDITION_COLUMNS)
        if not out.empty:
            need_cls = self.classes.get_indexer(out["details"].map(lambda d: d.get("needs_class")).astype(object))
            out["suggested_location_id"] = self._nearest_suitable(out["location_id"].to_numpy(object), need_cls, v["ok"])
        rej = rejected if rejected is not None else pd.DataFrame(columns=["location_id", "ts", "temp_c", "reason"])
        status = self._status(v) if with_status else pd.DataFrame()
        return StorageEvaluation(out.reindex(columns=CONDITION_COLUMNS), status, rej)

    def _verdicts(self, now_ns: int) -> dict:
        has = self.last_ns != _NEVER
        age_s = np.where(has, (now_ns - self.last_ns) / 1e9, np.inf)
        silent = age_s > self.silent_after
        t = self.last_temp[:, None]
        running = self.run_start != _NO_RUN
        run_s = np.where(running, (now_ns - self.run_start) / 1e9, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mkt = _mkt_from_mean_exp(self.exp_sum / self.count)
            extreme = (t <= self.ext_low[None, :]) | (t >= self.ext_high[None, :])
            timed = running & (run_s >= self.min_dur[None, :])
            humid = self.last_rh[:, None] > self.max_rh[None, :]
            mkt_bad = mkt[:, None] > self.mkt_max[None, :]
            in_range = (t >= self.low[None, :]) & (t <= self.high[None, :]) & ~humid
        ok = in_range & ~silent[:, None] & has[:, None]
        return {"has": has, "silent": silent, "run_s": run_s, "extreme": extreme, "timed": timed, "humid": humid,
                "mkt_bad": mkt_bad, "mkt": mkt, "ok": ok, "flag": extreme | timed | humid | mkt_bad}

    def _reason(self, v: dict, i: int, c: int) -> tuple[str, str]:
        parts = [p for p, on in (("extreme temperature", v["extreme"][i, c]),
                                 (f"out of range for {int(v['run_s'][i, c] // 60)} min", v["timed"][i, c]),
                                 ("humidity too high", v["humid"][i, c]),
                                 ("mean kinetic temperature too high", v["mkt_bad"][i, c])) if on]
        prio = "high" if v["extreme"][i, c] else "medium" if (v["timed"][i, c] or v["mkt_bad"][i, c]) else "low"
        return f"{', '.join(parts)} ({self.rules.storage[self.classes[c]].label})", prio

    def _excursions(self, v, flag, drugs, dl, dc, suits, light) -> pd.DataFrame:
        locs, cls = np.nonzero(flag)
        lit = np.flatnonzero(light)
        if locs.size == 0 and lit.size == 0:
            return pd.DataFrame(columns=CONDITION_COLUMNS)
        # Only flagged locations reach the Python assembly below (a handful per tick).
        ids = drugs["drug_id"].astype(str).to_numpy(object)
        held = suits & flag[np.maximum(dl, 0), np.maximum(dc, 0)]
        by_pair: dict = {}
        for i, c, d in zip(dl[held], dc[held], ids[held]):
            by_pair.setdefault((int(i), int(c)), []).append(d)
        per_loc: dict = {}
        for i, c in zip(locs, cls):
            reason, prio = self._reason(v, i, c)
            per_loc.setdefault(int(i), []).append((self.classes[c], reason, prio, by_pair.get((int(i), int(c)), [])))
        for j in lit:
            per_loc.setdefault(int(dl[j]), []).append((self.classes[dc[j]], "light-sensitive drug exposed to light", "low", [ids[j]]))
        rank = {"low": 1, "medium": 2, "high": 3}
        rows = []
        for i in sorted(per_loc, key=lambda i: self.names[i]):
            entries, loc = per_loc[i], self.names[i]
            worst = max(entries, key=lambda e: rank[e[2]])
            drug_ids = tuple(sorted({d for e in entries for d in e[3]}))
            rows.append({"kind": "storage.excursion", "key": f"storage.excursion:{loc}", "priority": worst[2],
                         "location_id": loc, "room_id": self.loc.at[i, "room_id"], "floor_id": self.floor[i],
                         "x_m": self.x[i], "y_m": self.y[i], "drug_ids": drug_ids,
                         "message": f"{loc}: {'; '.join(e[1] for e in entries)}"
                                    + (f"; affects {', '.join(drug_ids)}" if drug_ids else ""),
                         "details": {"reasons": [e[1] for e in entries], "temp_c": _f(self.last_temp[i]),
                                     "rh_pct": _f(self.last_rh[i]), "needs_class": worst[0]}})
        return pd.DataFrame(rows)

    def _silent(self, silent: np.ndarray) -> pd.DataFrame:
        i = np.flatnonzero(silent)
        if i.size == 0:
            return pd.DataFrame(columns=CONDITION_COLUMNS)
        last = np.array(["never" if ns == _NEVER else str(pd.Timestamp(int(ns), unit="ns", tz="UTC"))
                         for ns in self.last_ns[i]], dtype=object)
        loc = self.names[i]
        return pd.DataFrame({"kind": "storage.sensor_silent", "key": "storage.sensor_silent:" + loc.astype(str),
                             "priority": "low", "message": loc + ": logger not reporting (last reading " + last + ")",
                             "location_id": loc, "room_id": self.room[i],
                             "floor_id": self.floor[i], "x_m": self.x[i], "y_m": self.y[i], "drug_ids": [()] * i.size,
                             "details": [{"last_ts": x, "needs_class": c} for x, c in zip(last, self.cls_name[i])]})

    def _misplaced(self, drugs: pd.DataFrame, dl: np.ndarray, dc: np.ndarray) -> pd.DataFrame:
        has_loc = drugs["location_id"].notna().to_numpy()
        lc = np.where(dl >= 0, self.loc_cls[np.maximum(dl, 0)], -1)
        ok = (dc >= 0) & (lc >= 0) & self.compat[np.maximum(dc, 0), np.maximum(lc, 0)]
        j = np.flatnonzero(has_loc & ~ok)
        if j.size == 0:
            return pd.DataFrame(columns=CONDITION_COLUMNS)
        bad = drugs.iloc[j]
        known = dl[j] >= 0
        li = np.maximum(dl[j], 0)
        lcls = self.cls_name[li]
        drug_id = bad["drug_id"].astype(str).to_numpy(object)
        name = (bad["name"] if "name" in bad else bad["drug_id"]).astype(str).to_numpy(object)
        dcls = bad["storage_class"].astype(str).to_numpy(object)
        loc_id = bad["location_id"].astype(str).to_numpy(object)
        why = np.where(known, "stored in a " + lcls.astype(str) + " location", "not in a known storage location")
        nan = np.full(j.size, np.nan)
        return pd.DataFrame({"kind": "storage.drug_misplaced", "key": "storage.drug_misplaced:" + drug_id,
                             "priority": np.where(known, "medium", "low"),
                             "message": name + " (" + dcls + ") " + why.astype(object) + " at " + loc_id,
                             "location_id": loc_id,
                             "room_id": np.where(known, self.room[li], None),
                             "floor_id": np.where(known, self.floor[li], None), "x_m": np.where(known, self.x[li], nan),
                             "y_m": np.where(known, self.y[li], nan), "drug_ids": [(d,) for d in drug_id],
                             "details": [{"needs_class": c} for c in dcls]})

    def _nearest_suitable(self, origin_ids: np.ndarray, need: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Per origin row the nearest location suitable now for class need[k] (compatible class,
        reporting, latest reading in range); same floor first, then distance; None if none."""
        result = np.full(origin_ids.size, None, dtype=object)
        o = self.index.get_indexer(origin_ids)
        for c in np.unique(need[need >= 0]):
            rows = np.flatnonzero(need == c)
            cand = np.flatnonzero(ok[:, c] & (self.loc_cls >= 0) & self.compat[c, np.maximum(self.loc_cls, 0)])
            if cand.size == 0:
                continue
            oi = o[rows]
            known = oi >= 0
            oi = np.maximum(oi, 0)
            d = np.hypot(self.x[oi][:, None] - self.x[cand][None, :], self.y[oi][:, None] - self.y[cand][None, :])
            d = np.where(np.isnan(d) | ~known[:, None], FLOOR_PENALTY_M / 2, d)
            d = d + FLOOR_PENALTY_M * ((self.floor[oi][:, None] != self.floor[cand][None, :]) & known[:, None])
            d = np.where((oi[:, None] == cand[None, :]) & known[:, None], np.inf, d)
            best = d.argmin(axis=1)
            found = np.isfinite(d[np.arange(rows.size), best])
            result[rows] = np.where(found, self.names[cand][best], None)
        return result

    def _status(self, v: dict) -> pd.DataFrame:
        st = self.loc[["location_id", "room_id", "floor_id", "x_m", "y_m", "storage_class"]].copy()
        has = v["has"]
        st["last_ts"] = pd.to_datetime(np.where(has, self.last_ns, np.iinfo(np.int64).min), utc=True)
        st.loc[~has, "last_ts"] = pd.NaT
        st["temp_c"], st["rh_pct"], st["lux"] = self.last_temp, self.last_rh, self.last_lux
        st["mkt_c"] = v["mkt"]
        st["silent"] = v["silent"]
        for k, c in enumerate(self.classes):
            st[f"ok_{c}"] = v["ok"][:, k]
        return st


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(float, na_value=np.nan)


def storage_conditions(locations: pd.DataFrame, readings: pd.DataFrame, drugs: pd.DataFrame, now,
                       rules: RuleSet = DEFAULT_RULES) -> StorageEvaluation:
    """Excursion, silent-logger and misplaced-drug conditions at `now` (see module doc): a one-shot
    StorageState over `readings`."""
    _require(drugs, "drugs", ("drug_id", "storage_class", "location_id"))
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        raise InvalidInput("now must be tz-aware UTC")
    state = StorageState(locations, rules)
    rejected = state.add(readings)
    return state.evaluate(drugs, now, rejected)


def _f(x):
    return None if pd.isna(x) else float(x)


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
