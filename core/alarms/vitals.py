"""NEWS2 (RCP 2017) scoring, one observation set at a time (`news2`) or a whole frame (`news2_frame`),
plus a blood-glucose plausibility check and single-parameter rule.

Both paths share the band tables below and `np.searchsorted` on "<= upper edge" semantics, so a
non-integer input (35.05 °C, RR 20.5) always lands in exactly one band (standards §1.1 [V] note).
Impossible values raise `ImpossibleVital` (an ImpossibleVitalSign / ValueError) and are never
scored; missing values are never scored as 0 (`news2` refuses them, `news2_partial` says
"incomplete" and gives only a lower bound).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from core.alarms.rules import DEFAULT_RULES, VitalsRule
from core.errors import ImpossibleVitalSign, InvalidInput

PARAMETERS = ("resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temp_c")
ACVPU = ("A", "C", "V", "P", "U")

# Band tables, RCP NEWS2 Chart 1 (standards §1.1 [V]): value <= edges[i] scores scores[i]; above the
# last edge scores scores[-1].
_BANDS = MappingProxyType({
    "resp_rate": ((8, 11, 20, 24), (3, 1, 0, 2, 3)),
    "spo2_scale1": ((91, 93, 95), (3, 2, 1, 0)),
    "spo2_scale2_air": ((83, 85, 87), (3, 2, 1, 0)),          # >= 93 on air scores 0 (§1.1 [V])
    "spo2_scale2_o2": ((83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3)),
    "systolic_bp": ((90, 100, 110, 219), (3, 2, 1, 0, 3)),
    "pulse": ((40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
    "temp_c": ((35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2)),
})
OXYGEN_SCORE = 2        # "Air or oxygen?" row: oxygen = 2 (§1.1 [V])
CONSCIOUSNESS_SCORE = 3  # C, V, P or U = 3 (§1.1 [V])

# Physiological plausibility [E]: outside these a reading is an entry or sensor error (98.6 typed as
# °C, SpO2 > 100 %), not a patient. Bounds are wide on purpose: a real extreme must still score.
PLAUSIBLE = MappingProxyType({
    "resp_rate": (0.0, 100.0, "/min"),
    "spo2": (1.0, 100.0, "%"),
    "systolic_bp": (20.0, 300.0, "mmHg"),
    "pulse": (1.0, 300.0, "/min"),
    "temp_c": (10.0, 47.0, "°C"),       # survived extremes 13.7 / 46.5 °C; any °F body temp is > 47
})
GLUCOSE_PLAUSIBLE_MMOL_L = (0.5, 100.0)  # [E] below meter range / far beyond reported HHS values

# Chart 3/4 (standards §1.2 [V]): monitoring frequency and response by risk band.
MONITORING = MappingProxyType({"zero": "12h", "low": "4-6h", "low-medium": "1h", "medium": "1h",
                               "high": "continuous"})
RESPONSE = MappingProxyType({
    "zero": "Continue routine NEWS monitoring.",
    "low": "Inform a registered nurse, who assesses the patient and decides whether monitoring "
           "should be more frequent and/or care escalated.",
    "low-medium": "Urgent ward-based response: the registered nurse informs the medical team caring "
                  "for the patient, who review and decide whether escalation is needed.",
    "medium": "Key threshold for urgent response: registered nurse immediately informs the medical "
              "team; urgent assessment by a clinician competent in acute illness (within 1 h); care "
              "in an environment with monitoring facilities.",
    "high": "Urgent or emergency response: registered nurse immediately informs the medical team "
            "(at least specialist-registrar level); emergency assessment by a critical-care team "
            "(within 30 min); consider transfer to level 2/3 care.",
})


class ImpossibleVital(ImpossibleVitalSign):
    """A value no living patient can have; `parameter` and `value` say which."""

    def __init__(self, parameter: str, value, reason: str | None = None):
        self.parameter, self.value = parameter, value
        super().__init__(reason or impossible_message(parameter, value))


class MissingVital(InvalidInput):
    """A NEWS2 parameter is missing: the set cannot be scored (never assume normal)."""

    def __init__(self, missing: tuple[str, ...]):
        self.missing = missing
        super().__init__(f"NEWS2 incomplete: missing {', '.join(missing)} (use news2_partial)")


def impossible_message(parameter: str, value) -> str:
    if parameter in PLAUSIBLE:
        lo, hi, unit = PLAUSIBLE[parameter]
        return f"impossible {parameter}={value!r}: plausible range {lo:g}..{hi:g} {unit}"
    if parameter == "consciousness":
        return f"impossible consciousness={value!r}: one of {'/'.join(ACVPU)}"
    return f"impossible {parameter}={value!r}"


@dataclass(frozen=True)
class News2:
    total: int
    risk: str                 # "low", "low-medium", "medium", "high"
    red_score: bool           # some single parameter scored 3
    subscores: Mapping[str, int]
    monitoring: str           # "12h", "4-6h", "1h", "continuous"
    response: str
    spo2_scale: int = 1


@dataclass(frozen=True)
class News2Partial:
    """Result when parameters may be missing. `status` is "complete" (then `result` is set) or
    "incomplete": `minimum_total`/`minimum_risk` are lower bounds from the known parameters only."""
    status: str
    result: News2 | None
    missing: tuple[str, ...]
    known_subscores: Mapping[str, int]
    minimum_total: int
    minimum_risk: str
    red_score: bool


def _band(table: str, value: float) -> int:
    edges, scores = _BANDS[table]
    return scores[int(np.searchsorted(edges, value, side="left"))]


def risk_band(total: int, red_score: bool) -> str:
    """RCP Chart 3 (§1.2 [V], rule sketch [E]): >=7 high, 5-6 medium, single 3 -> low-medium."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if red_score else "low"


def _band_key(total: int, risk: str) -> str:
    return "zero" if total == 0 else risk


def _number(parameter: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ImpossibleVital(parameter, value, f"impossible {parameter}={value!r}: not a number")
    x = float(value)
    lo, hi, _unit = PLAUSIBLE[parameter]
    if not (lo <= x <= hi):     # also rejects inf
        raise ImpossibleVital(parameter, value)
    return x


def _oxygen(value) -> bool:
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return bool(value)
    raise ImpossibleVital("on_oxygen", value, f"impossible on_oxygen={value!r}: must be True/False")


def _acvpu(value) -> str:
    if isinstance(value, str) and value.strip().upper() in ACVPU:
        return value.strip().upper()
    raise ImpossibleVital("consciousness", value)


def _scale(value) -> int:
    if value in (1, 2) and not isinstance(value, bool):
        return int(value)
    raise InvalidInput(f"spo2_scale={value!r}: must be 1 or 2 (scale 2 only with a prescribed 88-92 % target)")


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _subscore(parameter: str, value, on_oxygen: bool, scale: int) -> int:
    if parameter == "on_oxygen":
        return OXYGEN_SCORE if _oxygen(value) else 0
    if parameter == "consciousness":
        return 0 if _acvpu(value) == "A" else CONSCIOUSNESS_SCORE
    x = _number(parameter, value)
    if parameter == "spo2":
        table = "spo2_scale1" if scale == 1 else ("spo2_scale2_o2" if on_oxygen else "spo2_scale2_air")
        return _band(table, x)
    return _band(parameter, x)


def _score(values: Mapping[str, object], scale: int) -> dict[str, int]:
    """Subscores of the present parameters; every present value is validated first."""
    present = {p: v for p, v in values.items() if not _is_missing(v)}
    on_o2 = _oxygen(present["on_oxygen"]) if "on_oxygen" in present else None
    subs = {}
    for p, v in present.items():
        if p == "spo2" and scale == 2 and on_o2 is None:
            _number("spo2", v)      # scale-2 SpO2 score depends on O2 status: validate, don't guess
            continue
        subs[p] = _subscore(p, v, bool(on_o2), scale)
    return subs


def _result(subs: Mapping[str, int], scale: int) -> News2:
    total = int(sum(subs.values()))
    red = any(s == 3 for s in subs.values())
    risk = risk_band(total, red)
    key = _band_key(total, risk)
    ordered = MappingProxyType({p: subs[p] for p in PARAMETERS})
    return News2(total, risk, red, ordered, MONITORING[key], RESPONSE[key], scale)


def news2(*, resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temp_c, spo2_scale=1) -> News2:
    """Score one complete observation set; raises ImpossibleVital or MissingVital."""
    values = dict(resp_rate=resp_rate, spo2=spo2, on_oxygen=on_oxygen, systolic_bp=systolic_bp,
                  pulse=pulse, consciousness=consciousness, temp_c=temp_c)
    scale = _scale(spo2_scale)
    subs = _score(values, scale)
    missing = tuple(p for p in PARAMETERS if _is_missing(values[p]))
    if missing:
        raise MissingVital(missing)
    return _result(subs, scale)


def news2_partial(*, resp_rate=None, spo2=None, on_oxygen=None, systolic_bp=None, pulse=None,
                  consciousness=None, temp_c=None, spo2_scale=1) -> News2Partial:
    """Score what is there; a set with gaps is "incomplete", never a confident low score."""
    values = dict(resp_rate=resp_rate, spo2=spo2, on_oxygen=on_oxygen, systolic_bp=systolic_bp,
                  pulse=pulse, consciousness=consciousness, temp_c=temp_c)
    scale = _scale(spo2_scale)
    subs = _score(values, scale)
    missing = tuple(p for p in PARAMETERS if p not in subs)
    total = int(sum(subs.values()))
    red = any(s == 3 for s in subs.values())
    if not missing:
        return News2Partial("complete", _result(subs, scale), (), MappingProxyType(subs), total,
                            risk_band(total, red), red)
    return News2Partial("incomplete", None, missing, MappingProxyType(subs), total, risk_band(total, red), red)


# ---------------------------------------------------------------- vectorised
def _frame_band(table: str, x: np.ndarray) -> np.ndarray:
    edges, scores = _BANDS[table]
    return np.asarray(scores)[np.searchsorted(np.asarray(edges, dtype=float), x, side="left")]


def _numeric_column(df: pd.DataFrame, col: str, reason: np.ndarray) -> np.ndarray:
    """Float array of `col`; writes a reason for non-numbers and implausible values (the message
    text is built for the offending rows only)."""
    if col not in df:
        return np.full(len(df), np.nan)
    raw = df[col]
    x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    not_number = np.isnan(x) & raw.notna().to_numpy()
    lo, hi, unit = PLAUSIBLE[col]
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(x) & ~((x >= lo) & (x <= hi))
    _note(reason, not_number, f"impossible {col}: not a number")
    if bad.any():
        rows = np.flatnonzero(bad & (reason == ""))
        shown = raw.to_numpy(dtype=object)[rows]
        reason[rows] = [f"impossible {col}={v}: plausible range {lo:g}..{hi:g} {unit}" for v in shown]
    return x


def _note(reason: np.ndarray, mask: np.ndarray, text) -> None:
    """Keep the first reason per row; `text` is one string or one per row."""
    rows = mask & (reason == "")
    reason[rows] = text[rows] if isinstance(text, np.ndarray) else text


def news2_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Score every row; rows with an impossible or missing value are not scored.

    Returns (same index) total (Int64), risk, red_score (boolean), monitoring, one sub_<parameter>
    column per parameter, status ("scored"/"impossible"/"incomplete") and rejected_reason.
    """
    n = len(df)
    reason = np.full(n, "", dtype=object)
    num = {c: _numeric_column(df, c, reason) for c in PLAUSIBLE}
    acvpu = (df["consciousness"] if "consciousness" in df else pd.Series(None, index=df.index, dtype=object))
    acvpu = acvpu.astype("string").str.strip().str.upper()
    _note(reason, (acvpu.notna() & ~acvpu.isin(ACVPU)).to_numpy(), "impossible consciousness: not one of A/C/V/P/U")
    o2_raw = df["on_oxygen"] if "on_oxygen" in df else pd.Series(None, index=df.index, dtype=object)
    o2_ok = o2_raw.isna() | o2_raw.isin([True, False, 0, 1])
    _note(reason, ~o2_ok.to_numpy(), "impossible on_oxygen: must be True/False")
    scale = (pd.to_numeric(df["spo2_scale"], errors="coerce").fillna(1).to_numpy()
             if "spo2_scale" in df else np.ones(n))
    _note(reason, ~np.isin(scale, (1, 2)), "invalid spo2_scale: must be 1 or 2")
    status = np.where(reason != "", "impossible", "scored").astype(object)

    missing = np.zeros(n, dtype=bool)
    for c in PLAUSIBLE:
        missing |= np.isnan(num[c])
    missing |= acvpu.isna().to_numpy() | o2_raw.isna().to_numpy()
    incomplete = missing & (status == "scored")
    status[incomplete] = "incomplete"
    reason[incomplete] = "incomplete: missing parameter(s)"

    on_o2 = o2_raw.where(o2_ok, False).fillna(False).astype(bool).to_numpy()
    ok = status == "scored"
    spo2 = np.nan_to_num(num["spo2"], nan=100.0)
    sub = {
        "resp_rate": _frame_band("resp_rate", np.nan_to_num(num["resp_rate"], nan=16.0)),
        "spo2": np.select([scale == 2, True], [
            np.where(on_o2, _frame_band("spo2_scale2_o2", spo2), _frame_band("spo2_scale2_air", spo2)),
            _frame_band("spo2_scale1", spo2)]),
        "on_oxygen": np.where(on_o2, OXYGEN_SCORE, 0),
        "systolic_bp": _frame_band("systolic_bp", np.nan_to_num(num["systolic_bp"], nan=120.0)),
        "pulse": _frame_band("pulse", np.nan_to_num(num["pulse"], nan=70.0)),
        "consciousness": np.where(acvpu.fillna("A").to_numpy() == "A", 0, CONSCIOUSNESS_SCORE),
        "temp_c": _frame_band("temp_c", np.nan_to_num(num["temp_c"], nan=37.0)),
    }
    total = sum(sub.values())
    red = np.column_stack(list(sub.values())).max(axis=1) == 3
    risk = np.select([total >= 7, total >= 5, red], ["high", "medium", "low-medium"], "low")
    band = np.where(total == 0, "zero", risk)
    na = ~ok
    # One constructor call with masked arrays: per-column .loc assignment costs more than the scoring.
    cols = {"total": pd.arrays.IntegerArray(np.where(ok, total, 0).astype("int64"), na),
            "risk": pd.array(np.where(ok, risk, None).astype(object), dtype="string"),
            "red_score": pd.arrays.BooleanArray(red & ok, na),
            "monitoring": pd.array(np.where(ok, _MONITORING_OF[np.searchsorted(_BANDS_SORTED, band)], None).astype(object),
                                   dtype="string")}
    for p, sc in sub.items():
        cols[f"sub_{p}"] = pd.arrays.IntegerArray(np.where(ok, sc, 0).astype("int64"), na)
    cols["status"] = pd.array(status.astype(object), dtype="string")
    cols["rejected_reason"] = pd.array(np.where(reason == "", None, reason).astype(object), dtype="string")
    return pd.DataFrame(cols, index=df.index)


_BANDS_SORTED = np.array(sorted(MONITORING))
_MONITORING_OF = np.array([MONITORING[b] for b in _BANDS_SORTED], dtype=object)


# ---------------------------------------------------------------- blood glucose
def validate_glucose(value_mmol_l) -> float:
    """A capillary/venous glucose in mmol/L, or ImpossibleVital (e.g. mg/dL typed as mmol/L > 100)."""
    if isinstance(value_mmol_l, bool) or not isinstance(value_mmol_l, (int, float, np.integer, np.floating)):
        raise ImpossibleVital("glucose_mmol_l", value_mmol_l, f"impossible glucose_mmol_l={value_mmol_l!r}: not a number")
    lo, hi = GLUCOSE_PLAUSIBLE_MMOL_L
    if not (lo <= float(value_mmol_l) <= hi):
        raise ImpossibleVital("glucose_mmol_l", value_mmol_l,
                              f"impossible glucose_mmol_l={value_mmol_l!r}: plausible range {lo:g}..{hi:g} mmol/L")
    return float(value_mmol_l)


def glucose_level(value_mmol_l, rule: VitalsRule = DEFAULT_RULES.vitals) -> tuple[str, str | None]:
    """(level, alarm priority or None). Single-parameter rule [E] (not part of NEWS2)."""
    g = validate_glucose(value_mmol_l)
    if g < rule.glucose_severe_hypo_mmol_l:
        return "severe_hypo", "high"
    if g < rule.glucose_hypo_mmol_l:
        return "hypo", "medium"
    if g > rule.glucose_severe_hyper_mmol_l:
        return "severe_hyper", "medium"
    if g > rule.glucose_hyper_mmol_l:
        return "hyper", "low"
    return "normal", None


# ---------------------------------------------------------------- alarm conditions
def vitals_conditions(obs: pd.DataFrame, now, rules: VitalsRule = DEFAULT_RULES.vitals) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conditions from each patient's latest observation set (patient_id, ts, ward/room/bed ids and
    the NEWS2 columns) -> (conditions, scored frame).

    NEWS2 5-6 -> medium, >=7 -> high (prompt / immediate response, IEC 60601-1-8 Table 1 [E]);
    a red score with total < 5 -> vitals.red_score medium (urgent ward response, §1.2 [V]); an
    observation older than its monitoring frequency, or one that could not be scored (impossible
    or incomplete), -> vitals.obs_overdue, because the patient has no valid current score.
    """
    now = pd.Timestamp(now)
    s = news2_frame(obs)
    ts = pd.to_datetime(obs["ts"], utc=True).astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")
    age_s = np.where(ts == np.iinfo(np.int64).min, np.nan, (now.as_unit("ns").value - ts) / 1e9)
    mon = s["monitoring"].to_numpy(dtype=object, na_value=None)
    limit = np.array([rules.overdue_after_s.get(m, np.nan) if m is not None else np.nan for m in mon], dtype=float) \
        if len(mon) < 64 else pd.Series(mon).map(dict(rules.overdue_after_s)).to_numpy(float, na_value=np.nan)
    risk = s["risk"].to_numpy(dtype=object, na_value="")
    total = s["total"].to_numpy(dtype=float, na_value=np.nan)
    scored = (s["status"] == "scored").to_numpy()
    news = (risk == "medium") | (risk == "high")
    red = risk == "low-medium"
    with np.errstate(invalid="ignore"):
        late = ~scored | ~(age_s <= limit)
    # Messages are built for flagged rows only: most patients are fine on most ticks.
    rows, kind, prio, msg = [], [], [], []
    for i in np.flatnonzero(news):
        rows.append(i); kind.append("vitals.news2"); prio.append("high" if risk[i] == "high" else "medium")
        msg.append(f"NEWS2 {int(total[i])} ({risk[i]}): {mon[i]} monitoring")
    for i in np.flatnonzero(red):
        rows.append(i); kind.append("vitals.red_score"); prio.append("medium")
        msg.append(f"NEWS2 single-parameter red score (total {int(total[i])}): urgent ward-based response")
    why = s["rejected_reason"].to_numpy(dtype=object, na_value="")
    for i in np.flatnonzero(late):
        rows.append(i); kind.append("vitals.obs_overdue"); prio.append("low")
        msg.append(f"observations overdue (last {round(age_s[i] / 60)} min ago)" if scored[i] else f"no valid NEWS2: {why[i]}")
    base = obs[[c for c in ("patient_id", "ward_id", "room_id", "bed_id") if c in obs]]
    out = base.iloc[np.asarray(rows, dtype=int)].reset_index(drop=True)
    pid = out["patient_id"].astype(str).to_numpy(object)
    kind = np.asarray(kind, dtype=object)
    return out.assign(kind=kind, key=kind + ":" + pid if len(pid) else np.array([], dtype=object),
                      priority=np.asarray(prio, dtype=object), message=np.asarray(msg, dtype=object)), s


def glucose_conditions(latest: pd.DataFrame, rules: VitalsRule = DEFAULT_RULES.vitals) -> pd.DataFrame:
    """vitals.glucose conditions from each patient's latest capillary glucose (patient_id,
    glucose_mmol_l, optional ward/room/bed ids): the single-parameter rule of `glucose_level`,
    vectorised. Implausible values never alarm (the caller rejected them with a reason)."""
    g = pd.to_numeric(latest["glucose_mmol_l"], errors="coerce").to_numpy(float, na_value=np.nan)
    lo, hi = GLUCOSE_PLAUSIBLE_MMOL_L
    ok = (g >= lo) & (g <= hi)
    level = np.select([g < rules.glucose_severe_hypo_mmol_l, g < rules.glucose_hypo_mmol_l,
                       g > rules.glucose_severe_hyper_mmol_l, g > rules.glucose_hyper_mmol_l],
                      ["severe hypoglycaemia", "hypoglycaemia", "severe hyperglycaemia", "hyperglycaemia"], "")
    prio = np.select([level == "severe hypoglycaemia", level == "hypoglycaemia", level == "severe hyperglycaemia"],
                     ["high", "medium", "medium"], "low")
    flag = ok & (level != "")
    base = latest[[c for c in ("patient_id", "ward_id", "room_id", "bed_id") if c in latest]][flag]
    pid = base["patient_id"].astype(str)
    return base.assign(kind="vitals.glucose", key="vitals.glucose:" + pid, priority=prio[flag],
                       message=pd.Series(level[flag], index=base.index) + ": capillary glucose "
                       + pd.Series(g[flag], index=base.index).round(1).astype(str) + " mmol/L")
