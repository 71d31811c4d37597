"""Seeded simulator of the ward's clinical sensors, for the demo and the tests:

* environment loggers in drug fridges, freezers and cupboards (temp_c, rh_pct, door_open, lux),
* patient vital-sign monitors (continuous) and nurses' observation sets (intermittent), plus
  capillary glucose for diabetic patients,
* RFID sightings of tagged drug packs at storage locations,
* waste item events (disposed / removed / dropped) and smart-bin telemetry (fill, opened at),
* badge telemetry (battery) and badge buttons (duress).

Every value is a pure function of (seed, absolute time), so a span can be generated again after a
restart and backfilled history matches what a live run would have produced. Scripted incidents
recur with their own period; each starts `lead_s` into its cycle when the simulator starts, so the
first occurrence of every kind shows up within the first few minutes of `streamlit run app.py`
(without shortening any rule's duration). The incident a row plays is named in the clinical sample's
`incident` column (core.sample_clinical).

A small share of readings is physically impossible on purpose (a 999 °C logger glitch, SpO2 150 %,
98.6 typed as °C, a pulse of -5): the alarm service must reject them with a reason, never score them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import numpy as np
import pandas as pd

from core.sample_clinical import Clinical

ENV_EVERY_S = 30            # loggers record far more often than CDC's 30-min minimum (standards §2.2 [V])
MONITOR_EVERY_S = 30
INVENTORY_EVERY_S = 60
BIN_EVERY_S = 60
BADGE_EVERY_S = 300
GLUCOSE_EVERY_S = 2 * 3600
FAULT_RATE = 0.003          # impossible readings per reading


@dataclass(frozen=True)
class Incident:
    period_s: float
    lead_s: float           # how far into its cycle the incident is when the simulator starts


# First occurrences (seconds after start) noted for the README's "what you will see".
INCIDENTS = {
    "door_left_open": Incident(3600, 930),          # fridge > 8 °C for 15 min at ~+1.5 min
    "compressor_failure": Incident(5400, 1960),     # freezer out of range 15 min at start, thawing (>= 0 °C) at +3 min
    "logger_offline": Incident(7200, 1805),         # fridge logger silent 30 min at start
    "humid_store": Incident(2700, 2400),            # cupboard RH 66 % from +5 min
    "left_out_of_fridge": Incident(3600, 3560),     # insulin pen in the CRT cupboard from +40 s
    "deteriorating": Incident(7200, 780),           # NEWS2 climbs: medium at start, high ~+3 min
    "new_confusion": Incident(2700, 60),            # new confusion (C) since 1 min before start: single-parameter red score
    "monitor_dropout": Incident(3600, 3540),        # monitor stops from +1 min for 8 min
    "late_obs": Incident(22500, 21540),             # 4-6-hourly obs taken 15 min late: overdue +1..+16 min
    "hypo": Incident(5400, 5280),                   # capillary glucose 3.3 mmol/L at +2 min
    "sharps_in_general": Incident(4500, 4470),      # needle in the general-waste bag at +30 s
    "overdue_infectious": Incident(14400, 90),      # infectious bag open 48 h at start, collected at +38 min
    "loose_bag": Incident(3000, 2700),              # infectious bag left in a corridor at +5 min
    "filling_sharps_box": Incident(15300, 14100),   # bay sharps box passes 3/4 full at ~+2 min
    "duress": Incident(2700, 2550),                 # nurse presses the duress button at +2.5 min
    "low_battery": Incident(7200, 420),             # an infusion pump tag at 8 % battery since 7 min before start
}

ENV_BASE = {"refrigerated": (4.8, 0.15, 42.0), "frozen": (-19.0, 0.3, 35.0), "crt": (21.5, 0.2, 45.0)}
DETERIORATED = {"resp_rate": 27.0, "spo2": 90.0, "systolic_bp": 95.0, "pulse": 122.0, "temp_c": 38.7}


@dataclass(frozen=True)
class SensorBatch:
    env: pd.DataFrame        # ts, sensor_id, location_id, temp_c, rh_pct, door_open, lux
    vitals: pd.DataFrame     # ts, patient_id, source, resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temp_c, glucose_mmol_l, spo2_scale
    drugs: pd.DataFrame      # ts, drug_id, tag_id, location_id (inventory sightings)
    waste: pd.DataFrame      # ts, item_id, tag_id, category, event, bin_id, room_id
    bins: pd.DataFrame       # ts, bin_id, fill_pct, opened_at
    badges: pd.DataFrame     # ts, tag_id, event ("battery" / "duress"), battery_pct

    def __len__(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self))


VITAL_COLUMNS = ["ts", "patient_id", "source", "resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
                 "consciousness", "temp_c", "glucose_mmol_l", "spo2_scale"]


def _epoch_s(t: datetime) -> float:
    return pd.Timestamp(t).timestamp()


def _slots(t0: float, t1: float, every: float, offset: float = 0.0) -> np.ndarray:
    """Slot times k*every+offset in (t0, t1] (epoch seconds)."""
    k0, k1 = np.floor((t0 - offset) / every) + 1, np.floor((t1 - offset) / every)
    return np.arange(k0, k1 + 1) * every + offset if k1 >= k0 else np.empty(0)


def _ts(epoch_s: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.round(np.asarray(epoch_s, float) * 1000).astype("int64"), unit="ms", utc=True)


class SensorSimulator:
    """`step(now)` returns everything the sensors sent since the previous call (a SensorBatch);
    `backfill(since, now)` the same for a past span, e.g. the last hours for charts at start-up."""

    def __init__(self, site, clinical: Clinical, *, seed: int = 7, start: datetime, fault_rate: float = FAULT_RATE):
        self.site, self.c, self.seed, self.fault_rate = site, clinical, int(seed), fault_rate
        self.start_s = _epoch_s(start)
        self.last_s: float | None = None
        rng = np.random.default_rng([self.seed, 1])
        p = clinical.patients
        self.cont = p[p["monitoring"] == "continuous"].reset_index(drop=True)
        self.inter = p[p["monitoring"] != "continuous"].reset_index(drop=True)
        self.inter_phase = rng.uniform(0, 1, len(self.inter))
        self.diab = p[p["diabetic"]].reset_index(drop=True)
        self.diab_phase = rng.uniform(0, GLUCOSE_EVERY_S, len(self.diab))
        b = clinical.bins
        du = b["room_id"].str.endswith("-DU").to_numpy()
        self.bin_rate = np.where(du, rng.uniform(6, 12, len(b)), rng.uniform(2, 4, len(b)))      # % per hour
        self.bin_phase = rng.uniform(0, 1, len(b))
        self.tags = pd.concat([site.tags["tag_id"], clinical.drugs["tag_id"], clinical.bins["tag_id"]], ignore_index=True)
        self.battery = rng.uniform(35, 100, len(self.tags)).round()

    # ------------------------------------------------------------ timing
    def phase(self, incident: str, t_s):
        """(position in cycle s, cycle number) of `incident` at epoch seconds t_s."""
        inc = INCIDENTS[incident]
        e = np.asarray(t_s, float) - self.start_s + inc.lead_s
        return np.mod(e, inc.period_s), np.floor(e / inc.period_s).astype(int)

    def _noise(self, stream: int, t_s: np.ndarray, n: int) -> np.ndarray:
        """Standard normal noise [len(t_s), n], a pure function of (seed, stream, slot time)."""
        out = np.empty((t_s.size, n))
        for i, t in enumerate(t_s):
            out[i] = np.random.default_rng([self.seed, stream, int(t)]).standard_normal(n)
        return out

    def _uniform(self, stream: int, t_s: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((t_s.size, n))
        for i, t in enumerate(t_s):
            out[i] = np.random.default_rng([self.seed, stream, int(t)]).random(n)
        return out

    # ------------------------------------------------------------ public
    def step(self, now: datetime) -> SensorBatch:
        t1 = _epoch_s(now)
        t0 = t1 - 1.0 if self.last_s is None else self.last_s
        self.last_s = max(t1, self.last_s or t1)
        return self.span(t0, t1)

    def backfill(self, since: datetime, now: datetime) -> SensorBatch:
        """History in (since, now]; later `step` calls continue from `now`."""
        self.last_s = _epoch_s(now)
        batch = self.span(_epoch_s(since), self.last_s)
        # Intermittent observations are hours apart: reach back far enough that every patient has a
        # last set (12 h covers the slowest NEWS2 frequency, standards §1.2 [V]).
        older = self._manual(_epoch_s(since) - 13 * 3600, _epoch_s(since))
        if len(older):
            batch = SensorBatch(batch.env, pd.concat([older, batch.vitals], ignore_index=True), batch.drugs,
                                batch.waste, batch.bins, batch.badges)
        return batch

    def span(self, t0: float, t1: float) -> SensorBatch:
        if t1 <= t0:
            t1 = t0
        return SensorBatch(self._env(t0, t1), self._vitals(t0, t1), self._drugs(t0, t1), self._waste(t0, t1),
                           self._bins(t0, t1), self._badges(t0, t1))

    # ------------------------------------------------------------ environment
    def _env(self, t0: float, t1: float) -> pd.DataFrame:
        u = self.c.storage_units
        t = _slots(t0, t1, ENV_EVERY_S)
        n = len(u)
        if t.size == 0:
            return pd.DataFrame(columns=["ts", "sensor_id", "location_id", "temp_c", "rh_pct", "door_open", "lux"])
        cls = u["storage_class"].to_numpy()
        base = np.array([ENV_BASE[c][0] for c in cls])
        sd = np.array([ENV_BASE[c][1] for c in cls])
        rh = np.array([ENV_BASE[c][2] for c in cls]) + np.zeros((t.size, n))
        hours = (t / 3600.0)[:, None]
        temp = base + sd * self._noise(11, t, n)
        # compressor cycling in cold units, a day/night swing in cupboards
        temp += np.where(cls == "crt", 1.5 * np.sin(2 * np.pi * (hours - 9) / 24), 0.5 * np.sin(2 * np.pi * hours * 3))
        door = np.zeros((t.size, n), bool)
        keep = np.ones((t.size, n), bool)
        for j, inc in enumerate(u["incident"]):
            if not inc:
                continue
            p, _ = self.phase(inc, t)
            if inc == "door_left_open":
                opened = p < 1800
                peak = 7.0 * (1 - np.exp(-1800 / 240))
                temp[:, j] += np.where(opened, 7.0 * (1 - np.exp(-p / 240)), peak * np.exp(-(p - 1800) / 300))
                door[:, j] = opened
            elif inc == "compressor_failure":
                temp[:, j] += np.where(p < 2700, np.minimum(0.55 * p / 60, 22.0), np.maximum(0.0, 22.0 - 1.5 * (p - 2700) / 60))
            elif inc == "logger_offline":
                keep[:, j] = p >= 2400
            elif inc == "humid_store":
                rh[:, j] = np.where(p < 900, 66.0, rh[:, j])
        rh = rh + 1.5 * self._noise(12, t, n)
        glitch = self._uniform(13, t, n) < self.fault_rate
        temp = np.where(glitch, 999.0, temp)               # a logger glitch: must be rejected, not alarmed
        rows = np.nonzero(keep)
        return pd.DataFrame({"ts": _ts(t[rows[0]]), "sensor_id": u["sensor_id"].to_numpy()[rows[1]],
                             "location_id": u["location_id"].to_numpy()[rows[1]],
                             "temp_c": temp[rows].round(2), "rh_pct": rh[rows].round(1), "door_open": door[rows],
                             "lux": np.where(cls[rows[1]] == "crt", 3.0, 0.0)})

    # ------------------------------------------------------------ vitals
    def _vitals(self, t0: float, t1: float) -> pd.DataFrame:
        parts = [self._monitors(t0, t1), self._manual(t0, t1), self._glucose(t0, t1)]
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=VITAL_COLUMNS)

    def _sets(self, pts: pd.DataFrame, t: np.ndarray, stream: int, scale: float = 1.0) -> dict:
        """Baseline + noise for patients x slots (flattened row-major: slot, patient)."""
        n = len(pts)
        z = self._noise(stream, t, 5 * n).reshape(t.size, 5, n)
        vals = {}
        for k, (col, sd, nd) in enumerate((("resp_rate", 1.0, 0), ("spo2", 0.7, 0), ("systolic_bp", 4.0, 0),
                                            ("pulse", 3.0, 0), ("temp_c", 0.08, 1))):
            vals[col] = pts[col].to_numpy(float)[None, :] + scale * sd * z[:, k, :]
        vals["spo2"] = np.minimum(vals["spo2"], 100.0)
        vals["on_oxygen"] = np.broadcast_to(pts["on_oxygen"].to_numpy(bool), (t.size, n)).copy()
        vals["consciousness"] = np.full((t.size, n), "A", dtype=object)
        return vals

    def _monitors(self, t0: float, t1: float) -> pd.DataFrame:
        pts = self.cont
        t = _slots(t0, t1, MONITOR_EVERY_S, 7.0)
        if t.size == 0 or pts.empty:
            return pd.DataFrame(columns=VITAL_COLUMNS)
        v = self._sets(pts, t, 21)
        keep = np.ones((t.size, len(pts)), bool)
        for j, inc in enumerate(pts["incident"]):
            if inc == "deteriorating":
                p, _ = self.phase(inc, t)
                f = np.where(p < 2400, np.clip(p / 1500, 0, 1), np.maximum(0.0, 1 - (p - 2400) / 1200))
                for col, target in DETERIORATED.items():
                    v[col][:, j] += f * (target - pts.at[j, col])
                v["on_oxygen"][:, j] = f > 0.55
            elif inc == "new_confusion":
                p, _ = self.phase(inc, t)
                v["consciousness"][:, j] = np.where(p < 720, "C", "A")
            elif inc == "monitor_dropout":
                p, _ = self.phase(inc, t)
                keep[:, j] = p >= 480
        self._impossible(v, self._uniform(22, t, len(pts)))
        return self._vital_frame(pts, t, v, keep, "monitor")

    def _impossible(self, v: dict, u: np.ndarray) -> None:
        """Entry/sensor errors no patient can have (must be rejected with a reason, never scored)."""
        bad = u < self.fault_rate
        which = (u / max(self.fault_rate, 1e-12) * 3).astype(int)
        v["spo2"] = np.where(bad & (which == 0), 150.0, v["spo2"])
        v["temp_c"] = np.where(bad & (which == 1), 98.6, v["temp_c"])
        v["pulse"] = np.where(bad & (which >= 2), -5.0, v["pulse"])

    def _vital_frame(self, pts, t, v, keep, source) -> pd.DataFrame:
        rows = np.nonzero(keep)
        out = {"ts": _ts(t[rows[0]]), "patient_id": pts["patient_id"].to_numpy()[rows[1]], "source": source}
        for col in ("resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temp_c"):
            a = v[col][rows]
            out[col] = a.round(1 if col == "temp_c" else 0) if a.dtype.kind == "f" else a
        out["glucose_mmol_l"] = np.nan
        out["spo2_scale"] = 1
        return pd.DataFrame(out)[VITAL_COLUMNS]

    def _manual(self, t0: float, t1: float) -> pd.DataFrame:
        """Intermittent observation sets at each patient's interval (the late_obs patient is late)."""
        pts = self.inter
        if pts.empty:
            return pd.DataFrame(columns=VITAL_COLUMNS)
        late = (pts["incident"] == "late_obs").to_numpy()
        interval = np.where(late, INCIDENTS["late_obs"].period_s, pts["obs_interval_h"].to_numpy(float) * 3600)
        # the late patient's set is due 6 h after the previous one and taken 6 h 15 min after it
        offset = np.where(late, self.start_s - INCIDENTS["late_obs"].lead_s, self.start_s + self.inter_phase * interval)
        k0 = np.floor((t0 - offset) / interval) + 1
        k1 = np.floor((t1 - offset) / interval)
        counts = np.maximum(0, k1 - k0 + 1).astype(int)
        if counts.sum() == 0:
            return pd.DataFrame(columns=VITAL_COLUMNS)
        who = np.repeat(np.arange(len(pts)), counts)
        ks = np.concatenate([np.arange(a, a + c) for a, c in zip(k0[counts > 0], counts[counts > 0])])
        t = ks * interval[who] + offset[who]
        v = self._sets(pts, np.arange(t.size) + int(t1), 31, scale=0.7)      # one noise row per set
        cols = {c: v[c][np.arange(t.size), who] for c in v}
        for c in ("resp_rate", "spo2", "systolic_bp", "pulse", "temp_c"):   # the scripted patient: exact values
            cols[c] = np.where(late[who], pts[c].to_numpy(float)[who], cols[c])
        self._impossible(cols, self._uniform(32, np.array([int(t1)]), t.size)[0])
        out = {"ts": _ts(t), "patient_id": pts["patient_id"].to_numpy()[who], "source": "manual"}
        for col in ("resp_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temp_c"):
            a = cols[col]
            out[col] = a.round(1 if col == "temp_c" else 0) if a.dtype.kind == "f" else a
        out["glucose_mmol_l"] = np.nan
        out["spo2_scale"] = 1
        return pd.DataFrame(out)[VITAL_COLUMNS]

    def _glucose(self, t0: float, t1: float) -> pd.DataFrame:
        """Capillary glucose for diabetic patients every 2 h; the hypo patient every 15 min in a hypo."""
        rows = []
        for j, (pid, g0, inc) in enumerate(zip(self.diab["patient_id"], self.diab["glucose_mmol_l"], self.diab["incident"])):
            t = _slots(t0, t1, GLUCOSE_EVERY_S, self.diab_phase[j])
            g = np.round(np.nan_to_num(g0, nan=7.0) + 0.6 * self._noise(41 + j, t, 1)[:, 0], 1) if t.size else np.empty(0)
            rows.append((pid, t, g))
            if inc == "hypo":
                t = _slots(t0, t1, 900.0, self.start_s - INCIDENTS["hypo"].lead_s + 120)
                p, _ = self.phase("hypo", t)
                hypo = p < 1800
                # 3.3 -> re-check every 15 min after treatment (NICE/JBDS hypo protocol sketch [E])
                g = np.where(p < 900, 3.3, 4.6)
                rows.append((pid, t[hypo], g[hypo]))
        rows = [r for r in rows if r[1].size]
        if not rows:
            return pd.DataFrame(columns=VITAL_COLUMNS)
        pid = np.concatenate([np.full(r[1].size, r[0], dtype=object) for r in rows])
        t = np.concatenate([r[1] for r in rows])
        df = pd.DataFrame({c: np.nan for c in VITAL_COLUMNS[3:]}, index=range(t.size))
        df["on_oxygen"] = None
        df["consciousness"] = None
        df["glucose_mmol_l"] = np.concatenate([r[2] for r in rows])
        df["spo2_scale"] = 1
        df.insert(0, "source", "glucose_meter")
        df.insert(0, "patient_id", pid)
        df.insert(0, "ts", _ts(t))
        return df[VITAL_COLUMNS]

    # ------------------------------------------------------------ drugs, waste, badges
    def _drugs(self, t0: float, t1: float) -> pd.DataFrame:
        d = self.c.drugs
        t = _slots(t0, t1, INVENTORY_EVERY_S, 3.0)
        if t.size == 0:
            return pd.DataFrame(columns=["ts", "drug_id", "tag_id", "location_id"])
        loc = np.broadcast_to(d["home_location_id"].to_numpy(object), (t.size, len(d))).copy()
        for j, inc in enumerate(d["incident"]):
            if inc == "left_out_of_fridge":
                p, _ = self.phase(inc, t)
                loc[:, j] = np.where(p < 1500, f"{d.at[j, 'ward_id']}-CRT", loc[:, j])
        return pd.DataFrame({"ts": _ts(np.repeat(t, len(d))), "drug_id": np.tile(d["drug_id"].to_numpy(), t.size),
                             "tag_id": np.tile(d["tag_id"].to_numpy(), t.size), "location_id": loc.ravel()})

    def _crossings(self, incident: str, t0: float, t1: float, at_p: float) -> list[tuple[float, int]]:
        """(epoch s, cycle) of each moment in (t0, t1] when `incident` reaches phase `at_p`."""
        inc = INCIDENTS[incident]
        first = self.start_s - inc.lead_s + at_p
        return [(float(t), int(round((t - first) / inc.period_s))) for t in _slots(t0, t1, inc.period_s, first % inc.period_s)]

    def _waste(self, t0: float, t1: float) -> pd.DataFrame:
        rows = []
        b, items = self.c.bins, self.c.waste_items
        for _, bn in b[b["incident"] == "sharps_in_general"].iterrows():
            sharp = items[items["category"] == "sharps"].iloc[0]
            shp = f"{bn['room_id']}-SHP"
            for t, k in self._crossings("sharps_in_general", t0, t1, 0.0):
                rows.append((t, f"{sharp['item_id']}-{k}", sharp["tag_id"], "sharps", "disposed", bn["bin_id"], bn["room_id"]))
            for t, k in self._crossings("sharps_in_general", t0, t1, 1200.0):
                rows.append((t, f"{sharp['item_id']}-{k}", sharp["tag_id"], "sharps", "disposed", shp, bn["room_id"]))
        inf = items[items["category"] == "infectious"].iloc[0]
        ward = self.site.wards["ward_id"].iloc[1]
        for t, k in self._crossings("loose_bag", t0, t1, 0.0):
            rows.append((t, f"{inf['item_id']}-L{k}", inf["tag_id"], "infectious", "dropped", None, f"{ward}-COR"))
        for t, k in self._crossings("loose_bag", t0, t1, 600.0):
            rows.append((t, f"{inf['item_id']}-L{k}", inf["tag_id"], "infectious", "disposed", f"{ward}-DU-INF", f"{ward}-DU"))
        # routine disposals (correct bin) so the waste map has a steady trickle of events
        for t in _slots(t0, t1, 240.0, 17.0):
            u = np.random.default_rng([self.seed, 51, int(t)]).random(2)
            bn = b.iloc[int(u[0] * len(b))]
            cats = bn["accepts"].split("|")
            cat = cats[int(u[1] * len(cats))]
            rows.append((t, f"WX{int(t)}", None, cat, "disposed", bn["bin_id"], bn["room_id"]))
        if not rows:
            return pd.DataFrame(columns=["ts", "item_id", "tag_id", "category", "event", "bin_id", "room_id"])
        df = pd.DataFrame(rows, columns=["t", "item_id", "tag_id", "category", "event", "bin_id", "room_id"])
        return df.assign(ts=_ts(df["t"].to_numpy())).sort_values("t")[
            ["ts", "item_id", "tag_id", "category", "event", "bin_id", "room_id"]].reset_index(drop=True)

    def bin_state(self, t_s) -> tuple[np.ndarray, np.ndarray]:
        """(fill_pct, opened_at epoch s) of every bin at epoch seconds t_s (collected at 80 % full)."""
        b = self.c.bins
        cycle_s = (80.0 - 5.0) / self.bin_rate * 3600
        e = float(t_s) - self.start_s + self.bin_phase * cycle_s
        for j, inc in enumerate(b["incident"]):
            if inc == "filling_sharps_box":       # 73 % at start, 3/4 full ~+2 min
                e[j] = float(t_s) - self.start_s + (68.0 / 75.0) * cycle_s[j]
        pos = np.mod(e, cycle_s)
        fill = 5.0 + self.bin_rate * pos / 3600
        opened = float(t_s) - pos
        for j, inc in enumerate(b["incident"]):
            if inc == "overdue_infectious":
                p, k = self.phase(inc, t_s)
                cyc0 = float(t_s) - float(p)
                # WHO 48 h limit (standards §3.1 [R]) passed 60 s into the cycle; collected at 40 min
                opened[j] = cyc0 - 48 * 3600 + 60 if p < 2400 else cyc0 + 2400
                fill[j] = 55.0 if p < 2400 else 5.0 + (float(p) - 2400) / 3600 * self.bin_rate[j]
        return fill, opened

    def _bins(self, t0: float, t1: float) -> pd.DataFrame:
        t = _slots(t0, t1, BIN_EVERY_S, 5.0)
        b = self.c.bins
        frames = []
        for ts in t:
            fill, opened = self.bin_state(ts)
            frames.append(pd.DataFrame({"ts": _ts(np.full(len(b), ts)), "bin_id": b["bin_id"].to_numpy(),
                                        "fill_pct": fill.round(1), "opened_at": _ts(opened)}))
        return pd.concat(frames, ignore_index=True) if frames else \
            pd.DataFrame(columns=["ts", "bin_id", "fill_pct", "opened_at"])

    def _badges(self, t0: float, t1: float) -> pd.DataFrame:
        rows = []
        t = _slots(t0, t1, BADGE_EVERY_S, 11.0)
        pump = self.site.entities[self.site.entities["subtype"] == "infusion_pump"]["entity_id"].iloc[0]
        pump_tag = self.site.tags.set_index("entity_id").at[pump, "tag_id"]
        low = self.tags.to_numpy() == pump_tag
        for ts in t:
            p, _ = self.phase("low_battery", ts)
            batt = np.where(low & (p < 1800), 8.0, self.battery)
            rows.append(pd.DataFrame({"ts": _ts(np.full(len(batt), ts)), "tag_id": self.tags.to_numpy(),
                                      "event": "battery", "battery_pct": batt}))
        staff = self.site.entities[(self.site.entities["subtype"] == "nurse")]
        who = staff[staff["ward_id"] == self.site.wards["ward_id"].iloc[-1]]["entity_id"]
        if len(who):
            tag = self.site.tags.set_index("entity_id").at[who.iloc[0], "tag_id"]
            for ts, _k in self._crossings("duress", t0, t1, 0.0):
                rows.append(pd.DataFrame({"ts": _ts(np.array([ts])), "tag_id": [tag], "event": "duress",
                                          "battery_pct": np.nan}))
        return pd.concat(rows, ignore_index=True) if rows else \
            pd.DataFrame(columns=["ts", "tag_id", "event", "battery_pct"])
