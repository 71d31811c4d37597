"""DEMO history for the operations page: seeded, generated, never real.

A fresh demo store holds minutes of simulated feed, so response-time distributions, occupancy or
hand-hygiene trends would be empty. `demo_history(site, end, days, seed)` generates `days` of
plausible operations data for the site's wards, beds, staff and devices, ending at `end` (the page
ends it where the live store's own records begin, so nothing is counted twice). Every generated
alarm id starts with "DEMO-", and the page shows "includes generated demo history" whenever it
is used (WARDSIGHT_DEMO=1; production sets WARDSIGHT_DEMO=0 and sees only its own data).

The numbers are illustrative, chosen so the page shows realistic shapes (night responses slower,
some escalations, a few overdue bins, 60-80 % hand-hygiene compliance); they are not benchmarks.
Deterministic: same site, end, days and seed → identical frames. Vectorised: 90 days of a
66-bed site take well under a second.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.alarms.rules import ESCALATION, waste_rules
from core.errors import InvalidInput
from core.operations import DAY_SHIFT_START_H, NIGHT_SHIFT_START_H
from core.ops_data import OpsFrames, beds_per_ward, par_levels_for

DEMO_PREFIX = "DEMO-"
DEMO_NOTE = ("Includes generated demo history (WARDSIGHT_DEMO=1): alarms, excursions, waste, device use, "
             "bedside time and hand hygiene before the live store's first record are illustrative, not real.")
S = 1_000_000_000            # ns per second
UTC_US = "datetime64[us, UTC]"

# kind: (per, rate per unit per day, priority mix (high, medium, low), ack median s, resolve median s)
ALARM_MIX = {
    "vitals.news2":         ("bed", 0.9, (0.2, 0.8, 0.0), 25, 1500),
    "vitals.red_score":     ("bed", 0.3, (0.0, 1.0, 0.0), 20, 1200),
    "vitals.obs_overdue":   ("bed", 1.2, (0.0, 0.0, 1.0), 45, 1800),
    "vitals.sensor_silent": ("bed", 0.4, (0.0, 1.0, 0.0), 30, 600),
    "help.request":         ("bed", 0.1, (1.0, 0.0, 0.0), 12, 600),
    "storage.excursion":    ("ward", 0.12, (0.0, 1.0, 0.0), 45, 2700),
    "waste.wrong_bin":      ("ward", 0.8, (0.0, 1.0, 0.0), 40, 3600),
    "waste.overdue":        ("ward", 0.3, (0.0, 0.0, 1.0), 70, 7200),
    "tag.low_battery":      ("ward", 0.5, (0.0, 0.0, 1.0), 80, 14400),
}
NIGHT_SLOWER = 1.5            # nights have fewer staff: responses take longer (illustrative)
WARD_SPEED = (1.0, 1.2, 0.85)  # per ward in site order, cycled
# device type: (in use median h, idle median h, cleaning median h)
DEVICE_CYCLE_H = {"infusion_pump": (10, 5, 0.75), "monitor": (18, 6, 0.5), "wheelchair": (0.75, 3, 0.25),
                  "mobile_bed": (2, 8, 0.5)}
STAY_MEDIAN_H, TURNOVER_MEDIAN_H = 110.0, 5.0      # length of stay ~4.6 d, bed empty ~5 h
SESSIONS_PER_BED_DAY = {"day": 9.0, "night": 5.0}
SESSION_MEDIAN_S = 240.0
HYGIENE_P = {("enter", "day"): 0.74, ("exit", "day"): 0.82, ("enter", "night"): 0.64, ("exit", "night"): 0.72}
WARD_HYGIENE_SHIFT = (0.05, 0.0, -0.08)
DISPOSALS_PER_BED_DAY = 3.0
WRONG_BIN_P = {"day": 0.03, "night": 0.055}
BIN_CATEGORIES = ("sharps", "infectious", "general", "pharmaceutical")
BIN_MEDIAN_H = {"sharps": 72, "infectious": 20, "general": 24, "pharmaceutical": 240}
CARE_ROLES = ("nurse", "charge_nurse", "hca", "doctor")


def _lognormal(rng, median, sigma, n) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _uniform_times(rng, s_ns: int, e_ns: int, n: int) -> np.ndarray:
    return np.sort(rng.integers(s_ns, e_ns, n))


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True)).astype(UTC_US)


def _is_night(ns: np.ndarray, tz: str) -> np.ndarray:
    hour = pd.to_datetime(ns, unit="ns", utc=True).tz_convert(tz).hour.to_numpy()
    return (hour < DAY_SHIFT_START_H) | (hour >= NIGHT_SHIFT_START_H)


def _renewal(rng, units: int, s_ns: int, e_ns: int, medians_h: np.ndarray, sigma: float = 0.6):
    """Back-to-back segments per unit cycling through len(medians_h) states from a random phase,
    starting before s_ns so the window opens mid-cycle. Returns (unit, state, start_ns, end_ns),
    clipped to [s_ns, e_ns)."""
    k = len(medians_h)
    span_h = (e_ns - s_ns) / S / 3600
    n = int(np.ceil(span_h / (np.sum(medians_h) / k) * 2.0)) + 2 * k
    phase = rng.integers(0, k, units)
    state = (phase[:, None] + np.arange(n)[None, :]) % k
    dur_ns = (_lognormal(rng, np.asarray(medians_h)[state], sigma, (units, n)) * 3600 * S).astype("int64")
    lead = (rng.random(units) * dur_ns[:, 0]).astype("int64")
    ends = s_ns - lead[:, None] + np.cumsum(dur_ns, axis=1)
    starts = ends - dur_ns
    unit = np.repeat(np.arange(units), n)
    st, en, sta = starts.ravel(), ends.ravel(), state.ravel()
    keep = (en > s_ns) & (st < e_ns)
    return unit[keep], sta[keep], np.maximum(st[keep], s_ns), np.minimum(en[keep], e_ns)


def demo_history(site, end, days: int = 90, seed: int = 7) -> OpsFrames:
    """Generated operations frames for [end - days, end) (see module doc). `end` tz-aware."""
    end_ts = pd.Timestamp(end)
    if end_ts.tzinfo is None:
        raise InvalidInput(f"end={end!r} is naive; pass a tz-aware time")
    if days <= 0:
        raise InvalidInput(f"days={days} must be positive")
    e_ns = int(end_ts.tz_convert("UTC").value)
    s_ns = e_ns - days * 86_400 * S
    rng = np.random.default_rng(seed)
    tz = site.timezone
    alarms = _alarms(rng, site, s_ns, e_ns, tz)
    sessions, room_events, dispensers = _bedside(rng, site, s_ns, e_ns, tz)
    disposals, bins = _waste(rng, site, s_ns, e_ns, tz)
    return OpsFrames(alarms=alarms, sessions=sessions, device_intervals=_devices(rng, site, s_ns, e_ns),
                     room_events=room_events, dispenser_events=dispensers, stays=_stays(rng, site, s_ns, e_ns),
                     excursions=_excursions(rng, alarms), disposals=disposals, bins=bins,
                     beds=beds_per_ward(site), par=par_levels_for(site), notes=(DEMO_NOTE,))


def _alarms(rng, site, s_ns, e_ns, tz) -> pd.DataFrame:
    days = (e_ns - s_ns) / 86_400 / S
    wards = site.wards["ward_id"].to_numpy(dtype=object)
    speed = {w: WARD_SPEED[i % len(WARD_SPEED)] for i, w in enumerate(wards)}
    parts = []
    for kind, (per, rate, mix, ack_med, res_med) in ALARM_MIX.items():
        units = site.beds["ward_id"].to_numpy(dtype=object) if per == "bed" else wards
        n = int(rng.poisson(rate * days * len(units)))
        ward = units[rng.integers(0, len(units), n)]
        raised = _uniform_times(rng, s_ns, e_ns, n)
        slow = np.where(_is_night(raised, tz), NIGHT_SLOWER, 1.0) * pd.Series(ward).map(speed).to_numpy(float)
        ack_s = _lognormal(rng, ack_med, 0.8, n) * slow
        res_s = ack_s + _lognormal(rng, res_med, 0.9, n)
        prio = np.array(["high", "medium", "low"])[rng.choice(3, n, p=mix)]
        parts.append(pd.DataFrame({"kind": kind, "ward_id": ward, "priority": prio, "raised": raised,
                                   "ack": raised + (ack_s * S).astype("int64"),
                                   "res": raised + (res_s * S).astype("int64"), "ack_s": ack_s}))
    a = pd.concat(parts, ignore_index=True).sort_values("raised", kind="stable").reset_index(drop=True)
    level = np.zeros(len(a), dtype="int64")
    for prio, policy in ESCALATION.items():       # levels the escalation ladder would have reached
        thresholds = np.cumsum(policy.timeouts_s)
        m = (a["priority"] == prio).to_numpy()
        level[m] = np.searchsorted(thresholds, a["ack_s"].to_numpy()[m], side="left")
    ack = _utc(a["ack"].to_numpy()).where(a["ack"].to_numpy() < e_ns)     # not yet: still pending
    res = _utc(a["res"].to_numpy()).where(a["res"].to_numpy() < e_ns)
    return pd.DataFrame({"alarm_id": [f"{DEMO_PREFIX}{i:06d}" for i in range(len(a))], "kind": a["kind"].astype("str"),
                         "ward_id": a["ward_id"].astype("str"), "priority": a["priority"].astype("str"),
                         "raised_at": _utc(a["raised"].to_numpy()), "acknowledged_at": ack, "resolved_at": res,
                         "escalation_level": level})


def _excursions(rng, alarms: pd.DataFrame) -> pd.DataFrame:
    x = alarms[alarms["kind"] == "storage.excursion"]
    end = x["resolved_at"].fillna(x["acknowledged_at"]).fillna(x["raised_at"])
    n = len(x)
    return pd.DataFrame({"location_id": (x["ward_id"] + "-MED fridge").astype("str"), "start": x["raised_at"],
                         "end": end, "duration_s": (end - x["raised_at"]).dt.total_seconds(),
                         "drugs_affected": rng.integers(1, 7, n).astype("int64"),
                         # a warm fridge: MKT over the episode a few degrees above the 8 °C limit
                         "mkt_c": np.round(8.0 + _lognormal(rng, 2.0, 0.5, n), 1),
                         "ward_id": x["ward_id"]}).reset_index(drop=True)


def _devices(rng, site, s_ns, e_ns) -> pd.DataFrame:
    dev = site.entities[(site.entities["kind"] == "device") & site.entities["subtype"].isin(DEVICE_CYCLE_H)]
    parts = []
    for dtype, medians in DEVICE_CYCLE_H.items():
        d = dev[dev["subtype"] == dtype]
        if d.empty:
            continue
        in_use_h, idle_h, cleaning_h = medians      # cycle: in use → cleaning → idle → in use
        unit, state, st, en = _renewal(rng, len(d), s_ns, e_ns, np.array([in_use_h, cleaning_h, idle_h], dtype=float))
        parts.append(pd.DataFrame({"device_id": d["entity_id"].to_numpy(dtype=object)[unit],
                                   "ward_id": d["ward_id"].to_numpy(dtype=object)[unit], "device_type": dtype,
                                   "status": np.array(["in_use", "cleaning", "idle"])[state],
                                   "start": _utc(st), "end": _utc(en)}))
    out = pd.concat(parts, ignore_index=True)
    return out.astype({"device_id": "str", "ward_id": "str", "device_type": "str", "status": "str"})


def _stays(rng, site, s_ns, e_ns) -> pd.DataFrame:
    beds = site.beds
    unit, state, st, en = _renewal(rng, len(beds), s_ns, e_ns, np.array([STAY_MEDIAN_H, TURNOVER_MEDIAN_H]), 0.7)
    occ = state == 0
    return pd.DataFrame({"bed_id": beds["bed_id"].to_numpy(dtype=object)[unit[occ]],
                         "ward_id": beds["ward_id"].to_numpy(dtype=object)[unit[occ]],
                         "start": _utc(st[occ]), "end": _utc(en[occ])}).astype({"bed_id": "str", "ward_id": "str"})


def _bedside(rng, site, s_ns, e_ns, tz):
    """Bedside sessions by on-shift care staff of the bed's ward, the room entry / exit around
    each, and dispenser uses near some of those moments (the hand-hygiene opportunities)."""
    days = (e_ns - s_ns) / 86_400 / S
    beds = site.beds.reset_index(drop=True)
    top = max(SESSIONS_PER_BED_DAY.values())
    n = int(rng.poisson(top * days * len(beds)))
    bed = rng.integers(0, len(beds), n)
    start = _uniform_times(rng, s_ns, e_ns, n)
    night = _is_night(start, tz)
    # generated at the busier shift's rate, thinned to each shift's own rate
    keep = rng.random(n) < np.where(night, SESSIONS_PER_BED_DAY["night"], SESSIONS_PER_BED_DAY["day"]) / top
    bed, start, night = bed[keep], start[keep], night[keep]
    ward = beds["ward_id"].to_numpy(dtype=object)[bed]
    room = beds["room_id"].to_numpy(dtype=object)[bed]
    staff_id = _pick_staff(rng, site, ward, night)
    has_staff = staff_id != ""
    ward, room, staff_id, start, night = ward[has_staff], room[has_staff], staff_id[has_staff], start[has_staff], night[has_staff]
    end = start + (_lognormal(rng, SESSION_MEDIAN_S, 0.7, len(start)) * S).astype("int64")
    end = np.minimum(end, e_ns)
    sessions = pd.DataFrame({"staff_id": staff_id, "ward_id": ward, "start": _utc(start), "end": _utc(end)}
                            ).astype({"staff_id": "str", "ward_id": "str"})
    enter = start - rng.integers(5, 25, len(start)) * S
    leave = end + rng.integers(5, 25, len(start)) * S
    ev_ts = np.concatenate([enter, leave])
    ok = (ev_ts >= s_ns) & (ev_ts < e_ns)
    ev = pd.DataFrame({"staff_id": np.concatenate([staff_id, staff_id]), "ward_id": np.concatenate([ward, ward]),
                       "room_id": np.concatenate([room, room]), "ts_ns": ev_ts,
                       "event": np.repeat(["enter", "exit"], len(start)),
                       "night": np.concatenate([night, night])})[ok]
    return sessions, _room_events(ev), _dispensers(rng, site, ev, s_ns, e_ns)


def _pick_staff(rng, site, ward: np.ndarray, night: np.ndarray) -> np.ndarray:
    """A random care-staff member of the ward on the matching shift pattern ("" if none)."""
    staff = site.entities[(site.entities["kind"] == "staff") & site.entities["subtype"].isin(CARE_ROLES)]
    out = np.full(len(ward), "", dtype=object)
    for (w, pattern), group in staff.groupby(["ward_id", "shift"]):
        m = (ward == w) & (night == (pattern == "night"))
        ids = group["entity_id"].to_numpy(dtype=object)
        out[m] = ids[rng.integers(0, len(ids), int(m.sum()))]
    return out


def _room_events(ev: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"staff_id": ev["staff_id"], "ward_id": ev["ward_id"], "room_id": ev["room_id"],
                        "ts": _utc(ev["ts_ns"].to_numpy()).to_numpy(), "event": ev["event"]})
    out["ts"] = pd.to_datetime(out["ts"], utc=True).astype(UTC_US)
    return out.astype({"staff_id": "str", "ward_id": "str", "room_id": "str", "event": "str"}
                      ).sort_values("ts", kind="stable").reset_index(drop=True)


def _dispensers(rng, site, ev: pd.DataFrame, s_ns, e_ns) -> pd.DataFrame:
    wards = site.wards["ward_id"].tolist()
    ward_shift = ev["ward_id"].map({w: WARD_HYGIENE_SHIFT[i % len(WARD_HYGIENE_SHIFT)] for i, w in enumerate(wards)})
    shift = np.where(ev["night"].to_numpy(), "night", "day")
    p = np.array([HYGIENE_P[(e, s)] for e, s in zip(ev["event"], shift)]) + ward_shift.to_numpy(float)
    used = rng.random(len(ev)) < p
    # a compliant use lands within ±20 s of the door; some extra uses are too far off to count
    offset = rng.integers(-20, 21, len(ev)) * S
    late = ~used & (rng.random(len(ev)) < 0.15)
    offset = np.where(late, rng.integers(60, 300, len(ev)) * S, offset)
    ts = ev["ts_ns"].to_numpy() + offset
    m = (used | late) & (ts >= s_ns) & (ts < e_ns)
    return pd.DataFrame({"staff_id": ev["staff_id"].to_numpy()[m], "ts": _utc(ts[m])}
                        ).astype({"staff_id": "str"}).sort_values("ts", kind="stable").reset_index(drop=True)


def _waste(rng, site, s_ns, e_ns, tz):
    days = (e_ns - s_ns) / 86_400 / S
    beds = site.beds
    n = int(rng.poisson(DISPOSALS_PER_BED_DAY * days * len(beds)))
    ward = beds["ward_id"].to_numpy(dtype=object)[rng.integers(0, len(beds), n)]
    ts = _uniform_times(rng, s_ns, e_ns, n)
    cat = np.array(BIN_CATEGORIES)[rng.choice(len(BIN_CATEGORIES), n, p=[0.2, 0.35, 0.35, 0.1])]
    wrong_p = np.where(_is_night(ts, tz), WRONG_BIN_P["night"], WRONG_BIN_P["day"])
    wrong = rng.random(n) < wrong_p
    code = pd.Series(cat).map({c: i for i, c in enumerate(BIN_CATEGORIES)}).to_numpy()
    other = np.array(BIN_CATEGORIES)[(code + rng.integers(1, len(BIN_CATEGORIES), n)) % len(BIN_CATEGORIES)]
    disposals = pd.DataFrame({"ward_id": ward, "ts": _utc(ts), "waste_category": cat,
                              "bin_category": np.where(wrong, other, cat)}
                             ).astype({"ward_id": "str", "waste_category": "str", "bin_category": "str"})
    return disposals, _bins(rng, site, s_ns, e_ns)


def _bins(rng, site, s_ns, e_ns) -> pd.DataFrame:
    """One bin per ward and category at a time, replaced when collected; the last one of each is
    still open at the end of the window (collected_at NaT)."""
    wards = site.wards["ward_id"].to_numpy(dtype=object)
    parts = []
    for cat in BIN_CATEGORIES:
        unit, _, st, en = _renewal(rng, len(wards), s_ns, e_ns, np.array([BIN_MEDIAN_H[cat]], dtype=float), 0.5)
        collected = _utc(en).where(en < e_ns)
        parts.append(pd.DataFrame({"ward_id": wards[unit], "category": cat, "opened_at": _utc(st),
                                   "collected_at": collected}))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "bin_id", [f"{DEMO_PREFIX}BIN-{i:05d}" for i in range(len(out))])
    return out.astype({"ward_id": "str", "category": "str"})


def bin_limits_h(climate: str = "temperate_warm") -> dict[str, float]:
    """Per-category bin age limits in hours from the WHO-based waste rules (core.alarms.rules);
    categories without a limit (radioactive) are left out."""
    return {c: r.max_storage_s / 3600 for c, r in waste_rules(climate).items() if r.max_storage_s is not None}
