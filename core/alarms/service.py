"""The alarm service: the pipeline hook that turns sensor readings and live presence into one alarm
inbox, and the functions pages call to read it and act on it.

Each pipeline tick (`AlarmService.on_tick`):
  1. take sensor readings - the seeded simulator in the demo (feed=sim), or what a production feed
     handed to `submit_sensor_readings` since the last tick;
  2. reject impossible readings with a reason (sensor_rejects / vital_readings.status), store the rest
     for charts (env_readings, vital_readings, waste_events; purged by age), update in-memory state;
  3. evaluate every rule family vectorised (vitals/NEWS2, drug storage, waste, location and tags);
  4. run the AlarmEngine lifecycle and escalation, naming the nearest on-duty responder from live
     presence (pipeline tracker + site.on_duty);
  5. persist changed alarms and their events, and append one audit row per transition.

User actions (acknowledge, resolve, help requests) go through the module functions below: in the
process that runs the feed they act on the live engine under its lock; anywhere else (a page
process with WARDSIGHT_FEED=none, the MQTT service in another process) they apply the transition in
the database, and the live service adopts it on its next tick from the alarm_events log.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from core.alarms import tables as t
from core.alarms.drug_storage import StorageState
from core.alarms.engine import OPEN_STATES, Alarm, AlarmEngine, AlarmEvent, UnknownAlarm
from core.alarms.rules import DEFAULT_RULES, PRIORITY_RANK, RuleSet
from core.alarms.vitals import (GLUCOSE_PLAUSIBLE_MMOL_L, PARAMETERS, glucose_conditions, news2_frame,
                                vitals_conditions)
from core.alarms.waste import HandlerTrail, waste_conditions
from core.errors import AccessDenied, InvalidInput
from core.models import to_ms
from core.sample_clinical import Clinical, load_clinical
from core.security import audit, roles

log = logging.getLogger(__name__)

SCOPES = ("vitals.", "storage.", "waste.", "location.", "tag.")
FLUSH_EVERY_S = 30.0          # open alarms' last_seen is written at least this often (restart hold times)
PURGE_EVERY_S = 3600.0
TRAIL_KEEP_S = 24 * 3600.0
RESTORE_ENV_S = 2 * 3600.0    # > the longest storage duration rule (15 min) with room for late loggers

# Which permission acknowledges / resolves which alarm family (core.security.roles matrix).
ACK_PERMISSION = {"vitals": "ack_vitals_alarm", "location": "ack_vitals_alarm", "storage": "ack_storage_alarm",
                  "waste": "ack_waste_alarm", "tag": "change_settings", "security": "change_settings"}


class InvalidSensorReading(InvalidInput):
    """A submitted sensor frame cannot be taken at all (no recognisable stream)."""


def ack_permission(kind: str) -> str | None:
    """The permission needed to acknowledge / resolve an alarm of `kind` (None: any signed-in staff,
    e.g. accepting a help request)."""
    return ACK_PERMISSION.get(kind.split(".")[0])


def may_act(role: str, kind: str) -> bool:
    perm = ack_permission(kind)
    return roles.as_role(role) not in (None, roles.Role.KIOSK) and (perm is None or roles.can(role, perm))


# ---------------------------------------------------------------- the live service
@dataclass
class ServiceStats:
    ticks: int = 0
    last_ms: float = 0.0
    rules_ms: float = 0.0
    recent_ms: list[float] = field(default_factory=list)
    rejected: int = 0


class AlarmService:
    def __init__(self, site, repo, settings, *, tracker=None, clinical: Clinical | None = None,
                 rules: RuleSet = DEFAULT_RULES, simulate: bool = False):
        self.site, self.repo, self.settings, self.tracker, self.rules = site, repo, settings, tracker, rules
        self.clinical = clinical or load_clinical(settings.sample_dir)
        self.simulate = simulate
        self.engine = AlarmEngine(rules)
        self.lock = threading.RLock()
        self.stats = ServiceStats()
        self._queue: list[pd.DataFrame] = []
        self._started = False
        self._sim = None
        self._last_flush = self._last_purge = self._last_eval = 0.0
        self._dirty = True                        # new readings since the last rule evaluation
        self._duty: tuple[int, pd.Series] | None = None
        self._event_mark = 0
        self._rooms = site.rooms.set_index("room_id")
        self._beds = site.beds.set_index("bed_id")
        ent = site.entities.set_index("entity_id")
        self._entities = ent
        self._tag_entity = site.tags.set_index("tag_id")["entity_id"]
        self.storage = StorageState(self.clinical.storage_units, rules)
        d = self.clinical.drugs
        self.drug_loc = pd.Series(d["home_location_id"].to_numpy(object), index=d["drug_id"].to_numpy(), dtype=object)
        self.latest_obs = pd.DataFrame()          # latest scored NEWS2 set per patient
        self.latest_glucose = pd.DataFrame(columns=["patient_id", "glucose_mmol_l", "ts"])
        self.monitor_seen: dict[str, pd.Timestamp] = {}
        self.bins = self.clinical.bins[["bin_id", "accepts", "room_id", "ward_id", "floor_id", "x_m", "y_m"]].assign(
            home_room_id=self.clinical.bins["room_id"], fill_pct=np.nan,
            opened_at=pd.Series(pd.NaT, index=self.clinical.bins.index, dtype="datetime64[ns, UTC]"))
        self.items = pd.DataFrame(columns=["item_id", "category", "bin_id", "room_id", "generated_at", "seen_at"])
        self.battery = pd.Series(dtype=float)
        self._duress: list[tuple[str, pd.Timestamp]] = []
        self._trail = pd.DataFrame(columns=["staff_id", "room_id", "ts"])
        self._trail_prepared = None               # HandlerTrail, rebuilt only when the trail grows
        self._disposal_rooms = set(site.rooms.loc[site.rooms["room_type"] == "dirty_utility", "room_id"])
        self._restore_alarms()

    # ------------------------------------------------------------ start-up and restart
    def _restore_alarms(self) -> None:
        with self.repo.engine.connect() as conn:
            self.engine.restore(t.load_active(conn))
            self._event_mark = int(conn.execute(select(func.coalesce(func.max(t.alarm_events.c.id), 0))).scalar_one())

    def _start(self, now: datetime) -> None:
        """First tick: reload sensor state from the store; in the demo, backfill history from the
        simulator (only the span the store does not already hold)."""
        self._started = True
        since = pd.Timestamp(now) - pd.Timedelta(hours=self.settings.sensor_backfill_h)
        latest = self._restore_sensor_state(now)
        if self.simulate:
            from core.feeds.sensors import SensorSimulator
            self._sim = SensorSimulator(self.site, self.clinical, seed=self.settings.sim_seed, start=now)
            if latest is None:
                self._seed_items(now)
            start = since if latest is None else max(since, latest)
            self._ingest(self._sim.backfill(start.to_pydatetime(), now), now)
            self._duress.clear()          # presses in the backfilled past are history, not alarms now
        self._trail_from_presence()

    def _seed_items(self, now: datetime) -> None:
        it = self.clinical.waste_items
        gen = pd.Timestamp(now) - pd.to_timedelta(it["age_h"], unit="h")
        rooms = self.clinical.bins.set_index("bin_id")["room_id"]
        self.items = pd.DataFrame({"item_id": it["item_id"], "category": it["category"], "bin_id": it["bin_id"],
                                   "room_id": it["bin_id"].map(rooms), "generated_at": gen, "seen_at": gen})
        self._save_items(self.items)

    def _restore_sensor_state(self, now: datetime) -> pd.Timestamp | None:
        """Rebuild in-memory state from the store after a restart; returns the newest stored reading time."""
        now_ms = to_ms(now)
        with self.repo.engine.connect() as conn:
            env = _frame(conn, select(t.env_readings).where(t.env_readings.c.ts_ms >= now_ms - int(RESTORE_ENV_S * 1000))
                         .order_by(t.env_readings.c.ts_ms))
            latest = conn.execute(select(func.max(t.env_readings.c.ts_ms))).scalar_one()
            vit = _frame(conn, select(t.vital_readings).where(t.vital_readings.c.ts_ms >= now_ms - 13 * 3600 * 1000))
            pos = _frame(conn, select(t.drug_positions))
            bins = _frame(conn, select(t.waste_bin_state))
            items = _frame(conn, select(t.waste_item_state))
        if not env.empty:
            self.storage.add(env.assign(ts=_ts(env["ts_ms"])))
        if not vit.empty:
            self._update_vitals(vit.assign(ts=_ts(vit["ts_ms"]), on_oxygen=vit["on_oxygen"].astype("boolean")),
                                vit["status"].to_numpy(object))
        if not pos.empty:
            self.drug_loc.update(pd.Series(pos["location_id"].to_numpy(object), index=pos["drug_id"].to_numpy()))
        if not bins.empty:
            b = bins.set_index("bin_id")
            self.bins["fill_pct"] = self.bins["bin_id"].map(b["fill_pct"])
            self.bins["opened_at"] = self.bins["bin_id"].map(_ts(b["opened_ms"]).to_series(index=b.index))
        if not items.empty:
            self.items = pd.DataFrame({"item_id": items["item_id"], "category": items["category"],
                                       "bin_id": items["bin_id"], "room_id": items["room_id"],
                                       "generated_at": _ts(items["generated_ms"]), "seen_at": _ts(items["seen_ms"])})
        return None if latest is None else pd.Timestamp(int(latest), unit="ms", tz="UTC")

    def _trail_from_presence(self) -> None:
        p = self._presence()
        s = p[p["kind"] == "staff"]
        if len(s):
            self._trail = pd.DataFrame({"staff_id": s["entity_id"].to_numpy(object), "room_id": s["room_id"].to_numpy(object),
                                        "ts": _ts(s["since_ms"])})
            self._trail_prepared = None

    # ------------------------------------------------------------ the tick hook
    def on_tick(self, result, now: datetime) -> None:
        t0 = time.perf_counter()
        with self.lock:
            if not self._started:
                self._start(now)
            if self._sim is not None:
                self._ingest(self._sim.step(now), now)
            self._drain_queue(now)
            self._follow_trail(getattr(result, "changes_frame", None))
            now_s = pd.Timestamp(now).timestamp()
            if self._dirty or now_s - self._last_eval >= self.settings.alarm_eval_s:
                t1 = time.perf_counter()
                self.evaluate(now)
                self._dirty, self._last_eval = False, now_s
                self.stats.rules_ms = (time.perf_counter() - t1) * 1000
            else:
                self.engine.tick(now, self.staff_presence(now))     # escalation is due every tick
            self._sync_remote()
            self._persist(now)
            self._maybe_purge(now)
        self.stats.ticks += 1
        self.stats.last_ms = (time.perf_counter() - t0) * 1000
        self.stats.recent_ms = (self.stats.recent_ms + [self.stats.last_ms])[-60:]

    def evaluate(self, now: datetime) -> list[AlarmEvent]:
        """All rule families at `now`, then the engine lifecycle and escalation."""
        conds = self.conditions(now)
        staff = self.staff_presence(now)
        res = self.engine.evaluate(conds, now, staff, scope=SCOPES)
        if res.rejected:
            log.warning("alarm conditions rejected: %s", [r.get("reason") for r in res.rejected][:5])
        return list(res.events) + self.engine.tick(now, staff)

    # ------------------------------------------------------------ production path
    def submit_sensor_readings(self, df: pd.DataFrame) -> int:
        """Queue readings from a real feed (MQTT bridge, HL7/device gateway) for the next tick.

        One frame per call; its stream is the `stream` column (env / vitals / drugs / waste / bins /
        badges) or, without it, inferred from the columns (location_id or sensor_id + temp_c: env;
        patient_id: vitals). Rows are validated at the tick and bad ones recorded with a reason."""
        if df is None or df.empty:
            return 0
        if "stream" not in df:
            stream = _infer_stream(df)
            df = df.assign(stream=stream)
        with self.lock:
            self._queue.append(df.copy())
        return len(df)

    def _drain_queue(self, now: datetime) -> None:
        if not self._queue:
            return
        frames, self._queue = self._queue, []
        df = pd.concat(frames, ignore_index=True)
        known = df["stream"].isin(["env", "vitals", "drugs", "waste", "bins", "badges"])
        if (~known).any():
            self._reject("unknown", df[~known], "unknown stream (expected env, vitals, drugs, waste, bins or badges)", now)
        from core.feeds.sensors import SensorBatch
        parts = {s: df[known & (df["stream"] == s)].drop(columns="stream") for s in
                 ("env", "vitals", "drugs", "waste", "bins", "badges")}
        batch = SensorBatch(**{k: _with_ts(v) for k, v in parts.items()})
        self._ingest(batch, now)

    # ------------------------------------------------------------ ingest
    def _ingest(self, batch, now: datetime) -> None:
        rows: dict = {}
        if len(batch):
            self._dirty = True
        if len(batch.env):
            env = batch.env.assign(location_id=_loc_of(batch.env, self.clinical.storage_units))
            rejected = self.storage.add(env)
            if len(rejected):
                self._reject("env", rejected, rejected["reason"], now)
            good = env.drop(index=rejected.index)
            rows[t.env_readings] = pd.DataFrame({
                "ts_ms": _ms(good["ts"]), "location_id": good["location_id"].astype(str),
                "sensor_id": good.get("sensor_id"), "temp_c": good["temp_c"].astype(float),
                "rh_pct": _col(good, "rh_pct"), "door_open": _col(good, "door_open"), "lux": _col(good, "lux")})
        if len(batch.vitals):
            rows[t.vital_readings] = self._vitals(batch.vitals, now)
        if len(batch.drugs):
            self._drugs(batch.drugs)
        if len(batch.bins):
            self._bins(batch.bins, now)
        if len(batch.waste):
            rows[t.waste_events] = self._waste(batch.waste, now)
        if len(batch.badges):
            self._badges(batch.badges)
        with self.repo.engine.begin() as conn:
            for table, df in rows.items():
                if len(df):
                    conn.execute(insert(table), _records(df))

    def _vitals(self, v: pd.DataFrame, now: datetime) -> pd.DataFrame:
        v = v.reset_index(drop=True)
        is_glucose = v["source"].eq("glucose_meter").to_numpy() if "source" in v else np.zeros(len(v), bool)
        scored = news2_frame(v)
        status = scored["status"].astype(object).to_numpy()
        reason = scored["rejected_reason"].astype(object).to_numpy()
        g = pd.to_numeric(v.get("glucose_mmol_l", pd.Series(np.nan, index=v.index)), errors="coerce").to_numpy(float)
        lo, hi = GLUCOSE_PLAUSIBLE_MMOL_L
        g_bad = ~np.isnan(g) & ~((g >= lo) & (g <= hi))
        status = np.where(is_glucose, np.where(g_bad, "impossible", "glucose"), status)
        reason = np.where(is_glucose, np.where(g_bad, "impossible glucose_mmol_l: plausible range 0.5..100 mmol/L", None), reason)
        known = v["patient_id"].isin(self.clinical.patients["patient_id"]).to_numpy()
        status = np.where(known, status, "impossible")
        reason = np.where(known, reason, "unknown patient_id")
        self.stats.rejected += int((status == "impossible").sum())
        self._update_vitals(v.assign(news2_total=scored["total"], news2_risk=scored["risk"],
                                     monitoring=scored["monitoring"]), status)
        out = pd.DataFrame({"ts_ms": _ms(v["ts"]), "patient_id": v["patient_id"].astype(str), "source": v.get("source")})
        for c in ("resp_rate", "spo2", "systolic_bp", "pulse", "temp_c", "glucose_mmol_l"):
            out[c] = pd.to_numeric(v.get(c), errors="coerce").to_numpy(float) if c in v else np.nan
        out["on_oxygen"] = v["on_oxygen"].astype("boolean").astype("Int64") if "on_oxygen" in v else None
        out["consciousness"] = v["consciousness"].astype(object).str.slice(0, 2) if "consciousness" in v else None
        out["spo2_scale"] = pd.to_numeric(v.get("spo2_scale", 1), errors="coerce")
        out["news2_total"] = scored["total"].astype("Int64")
        out["news2_risk"] = scored["risk"].astype(object)
        out["monitoring"] = scored["monitoring"].astype(object)
        out["status"], out["reason"] = status, reason
        return out

    def _update_vitals(self, v: pd.DataFrame, status: np.ndarray) -> None:
        v = v.assign(_status=status)
        ok = v[v["_status"] == "scored"]
        if len(ok):
            last = ok.sort_values("ts").drop_duplicates("patient_id", keep="last")
            cols = ["patient_id", "ts", *PARAMETERS, "spo2_scale"]
            merged = pd.concat([self.latest_obs, last[[c for c in cols if c in last]]], ignore_index=True) \
                if len(self.latest_obs) else last[[c for c in cols if c in last]]
            self.latest_obs = merged.sort_values("ts").drop_duplicates("patient_id", keep="last").reset_index(drop=True)
        gl = v[v["_status"] == "glucose"]
        if len(gl):
            merged = pd.concat([self.latest_glucose, gl[["patient_id", "glucose_mmol_l", "ts"]]], ignore_index=True)
            self.latest_glucose = merged.sort_values("ts").drop_duplicates("patient_id", keep="last").reset_index(drop=True)
        mon = v[v["source"].eq("monitor").to_numpy()] if "source" in v else v.iloc[:0]
        if len(mon):
            self.monitor_seen.update(mon.groupby("patient_id")["ts"].max().to_dict())

    def _drugs(self, d: pd.DataFrame) -> None:
        if "drug_id" not in d and "tag_id" in d:
            d = d.assign(drug_id=d["tag_id"].map(self.clinical.drugs.set_index("tag_id")["drug_id"]))
        d = d[d["drug_id"].isin(self.drug_loc.index)].sort_values("ts").drop_duplicates("drug_id", keep="last")
        new = pd.Series(d["location_id"].to_numpy(object), index=d["drug_id"].to_numpy())
        old = self.drug_loc.reindex(new.index)
        moved = new[(old.astype(object) != new.astype(object)).to_numpy()]
        self.drug_loc.update(new)
        if len(moved):
            seen = d.set_index("drug_id")["ts"]
            with self.repo.engine.begin() as conn:
                conn.execute(delete(t.drug_positions).where(t.drug_positions.c.drug_id.in_(list(moved.index))))
                conn.execute(insert(t.drug_positions), [{"drug_id": k, "location_id": v, "since_ms": to_ms(seen[k]),
                                                         "seen_ms": to_ms(seen[k])} for k, v in moved.items()])

    def _bins(self, b: pd.DataFrame, now: datetime) -> None:
        last = b.sort_values("ts").drop_duplicates("bin_id", keep="last").set_index("bin_id")
        idx = self.bins["bin_id"]
        opened = _ts_series(last["opened_at"]).reindex(idx).astype("datetime64[ns, UTC]")
        was = self.bins["opened_at"].astype("datetime64[ns, UTC]")
        emptied = was.notna().to_numpy() & opened.notna().to_numpy() & (opened.to_numpy() > was.to_numpy())
        collected = set(idx[emptied])
        if collected and len(self.items):
            gone = self.items[self.items["bin_id"].isin(collected)]
            self.items = self.items.drop(index=gone.index)
            self._delete_items(gone["item_id"])
        has = opened.notna().to_numpy()
        self.bins["opened_at"] = self.bins["opened_at"].astype("datetime64[ns, UTC]").where(~has, opened.to_numpy())
        fill = pd.to_numeric(last["fill_pct"], errors="coerce").reindex(idx).to_numpy(float)
        self.bins.loc[~np.isnan(fill), "fill_pct"] = fill[~np.isnan(fill)]
        rows = [{"bin_id": k, "fill_pct": float(f), "opened_ms": to_ms(pd.Timestamp(o)), "updated_ms": to_ms(now)}
                for k, f, o in zip(self.bins["bin_id"], self.bins["fill_pct"], self.bins["opened_at"]) if pd.notna(o)]
        with self.repo.engine.begin() as conn:
            conn.execute(delete(t.waste_bin_state))
            if rows:
                conn.execute(insert(t.waste_bin_state), rows)

    def _waste(self, w: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """Apply item events in time order; returns waste_events rows (with the last handler)."""
        w = w.sort_values("ts").reset_index(drop=True)
        bins = self.clinical.bins.set_index("bin_id")
        room = w["room_id"].where(w["room_id"].notna(), w["bin_id"].map(bins["room_id"]))
        ev = w.assign(room_id=room)
        items = self.items.set_index("item_id")
        for r in ev.itertuples(index=False):       # a handful of events per tick
            if r.event in ("disposed", "dropped", "moved"):
                gen = items.at[r.item_id, "generated_at"] if r.item_id in items.index else r.ts
                items.loc[r.item_id, ["category", "bin_id", "room_id", "generated_at", "seen_at"]] = \
                    [r.category, r.bin_id if r.event == "disposed" else None, r.room_id, gen, r.ts]
            elif r.event in ("removed", "collected") and r.item_id in items.index:
                items = items.drop(index=r.item_id)
        self.items = items.reset_index()
        self._save_items(self.items[self.items["item_id"].isin(ev["item_id"])])
        gone = ev.loc[ev["event"].isin(["removed", "collected"]), "item_id"]
        if len(gone):
            self._delete_items(gone)
        x = ev["bin_id"].map(bins["x_m"]).fillna(ev["room_id"].map(self._rooms["cx_m"]))
        y = ev["bin_id"].map(bins["y_m"]).fillna(ev["room_id"].map(self._rooms["cy_m"]))
        trail = self._trail
        handler = _last_in_room(ev.rename(columns={"ts": "event_ts"}), trail)
        return pd.DataFrame({"ts_ms": _ms(ev["ts"]), "item_id": ev["item_id"].astype(str), "category": ev["category"],
                             "event": ev["event"], "bin_id": ev["bin_id"], "room_id": ev["room_id"],
                             "floor_id": ev["room_id"].map(self._rooms["floor_id"]), "x_m": x, "y_m": y,
                             "handler": handler})

    def _save_items(self, items: pd.DataFrame) -> None:
        if items.empty:
            return
        with self.repo.engine.begin() as conn:
            conn.execute(delete(t.waste_item_state).where(t.waste_item_state.c.item_id.in_(list(items["item_id"]))))
            conn.execute(insert(t.waste_item_state), _records(pd.DataFrame({
                "item_id": items["item_id"].astype(str), "category": items["category"], "bin_id": items["bin_id"],
                "room_id": items["room_id"], "generated_ms": _ms(items["generated_at"]), "seen_ms": _ms(items["seen_at"])})))

    def _delete_items(self, ids) -> None:
        with self.repo.engine.begin() as conn:
            conn.execute(delete(t.waste_item_state).where(t.waste_item_state.c.item_id.in_([str(i) for i in ids])))

    def _badges(self, b: pd.DataFrame) -> None:
        batt = b[b["event"].eq("battery")]
        if len(batt):
            last = batt.sort_values("ts").drop_duplicates("tag_id", keep="last")
            upd = pd.Series(pd.to_numeric(last["battery_pct"], errors="coerce").to_numpy(float), index=last["tag_id"].to_numpy())
            self.battery = pd.concat([self.battery[~self.battery.index.isin(upd.index)], upd])
        for tag, ts in zip(b.loc[b["event"].eq("duress"), "tag_id"], b.loc[b["event"].eq("duress"), "ts"]):
            self._duress.append((str(tag), pd.Timestamp(ts)))

    def _reject(self, stream: str, df: pd.DataFrame, reason, now: datetime) -> None:
        src = next((c for c in ("location_id", "sensor_id", "patient_id", "tag_id", "bin_id") if c in df), None)
        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=df.index)
        body = df.drop(columns=[c for c in ("reason",) if c in df])
        raw = pd.Series([",".join(map(str, r)) for r in body.itertuples(index=False)], index=df.index, dtype=object)
        rows = pd.DataFrame({"ts_ms": to_ms(now), "stream": stream,
                             "source_id": df[src].astype(str) if src else None,
                             "reason": reasons.astype(str).str.slice(0, 200), "raw": raw.str.slice(0, 500)})
        self.stats.rejected += len(rows)
        with self.repo.engine.begin() as conn:
            conn.execute(insert(t.sensor_rejects), _records(rows))

    # ------------------------------------------------------------ presence
    def _presence(self) -> pd.DataFrame:
        if self.tracker is not None:
            p = self.tracker.snapshot()
        else:
            p = self.repo.presence()[["tag_id", "entity_id", "floor_id", "room_id", "bed_id", "x_m", "y_m",
                                      "since_ms", "last_seen_ms"]]
        ent = self._entities
        return p.assign(kind=p["entity_id"].map(ent["kind"]).to_numpy(object),
                        subtype=p["entity_id"].map(ent["subtype"]).to_numpy(object),
                        home_ward=p["entity_id"].map(ent["ward_id"]).to_numpy(object))

    def staff_presence(self, now: datetime, presence: pd.DataFrame | None = None) -> pd.DataFrame:
        """On-duty staff heard recently: staff_id, role, floor_id, x_m, y_m, on_duty."""
        p = self._presence() if presence is None else presence
        return _staff_frame(p, self.on_duty(now), now, self.settings.stale_after_s)

    def on_duty(self, now: datetime) -> pd.Series:
        """site.on_duty, computed once per minute (shift edges are on the minute)."""
        minute = int(pd.Timestamp(now).timestamp() // 60)
        if self._duty is None or self._duty[0] != minute:
            self._duty = (minute, self.site.on_duty(now))
        return self._duty[1]

    def _follow_trail(self, changes: pd.DataFrame | None) -> None:
        if changes is None or changes.empty:
            return
        s = changes[changes["entity_id"].map(self._entities["kind"]).eq("staff").to_numpy() & changes["room_id"].notna().to_numpy()]
        if s.empty:
            return
        new = pd.DataFrame({"staff_id": s["entity_id"].to_numpy(object), "room_id": s["room_id"].to_numpy(object),
                            "ts": _ts(s["ts_ms"])})
        trail = pd.concat([self._trail, new], ignore_index=True) if len(self._trail) else new
        cut = trail["ts"].max() - pd.Timedelta(seconds=TRAIL_KEEP_S)
        self._trail = trail[trail["ts"] >= cut].reset_index(drop=True)
        self._trail_prepared = None

    # ------------------------------------------------------------ rules
    def conditions(self, now: datetime) -> pd.DataFrame:
        """Every rule family's currently-true conditions, enriched with ward / floor / position."""
        parts = [self._vital_conditions(now), self._storage_conditions(now), self._waste_conditions(now),
                 self._location_conditions(now)]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.DataFrame(columns=["kind", "key", "priority", "message"])
        c = pd.concat(parts, ignore_index=True)
        return self._place(c)

    def _place(self, c: pd.DataFrame) -> pd.DataFrame:
        for col in ("ward_id", "room_id", "bed_id", "floor_id", "x_m", "y_m"):
            if col not in c:
                c[col] = None if not col.endswith("_m") else np.nan
        bed_room = c["bed_id"].map(self._beds["room_id"])
        c["room_id"] = c["room_id"].where(c["room_id"].notna(), bed_room)
        r = self._rooms
        c["ward_id"] = c["ward_id"].where(c["ward_id"].notna(), c["room_id"].map(r["ward_id"]))
        c["floor_id"] = c["floor_id"].where(c["floor_id"].notna(), c["room_id"].map(r["floor_id"]))
        bx, by = c["bed_id"].map(self._beds["cx_m"]), c["bed_id"].map(self._beds["cy_m"])
        c["x_m"] = pd.to_numeric(c["x_m"], errors="coerce").fillna(bx).fillna(c["room_id"].map(r["cx_m"]))
        c["y_m"] = pd.to_numeric(c["y_m"], errors="coerce").fillna(by).fillna(c["room_id"].map(r["cy_m"]))
        return c

    def _vital_conditions(self, now: datetime) -> pd.DataFrame:
        pts = self.clinical.patients[["patient_id", "ward_id", "bed_id"]]
        obs = pts.merge(self.latest_obs, on="patient_id", how="left") if len(self.latest_obs) else pts.assign(ts=pd.NaT)
        obs["ts"] = pd.to_datetime(obs["ts"], utc=True)
        conds, _scored = vitals_conditions(obs, now, self.rules.vitals)
        never = obs["ts"].isna().to_numpy()
        if never.any() and len(conds):
            conds.loc[conds["patient_id"].isin(obs.loc[never, "patient_id"]) & conds["kind"].eq("vitals.obs_overdue"),
                      "message"] = "no observations recorded"
        parts = [conds]
        if len(self.latest_glucose):
            g = self.latest_glucose.merge(pts, on="patient_id")
            parts.append(glucose_conditions(g, self.rules.vitals))
        cont = self.clinical.patients[self.clinical.patients["monitoring"] == "continuous"]
        seen = cont["patient_id"].map(self.monitor_seen)
        age = (pd.Timestamp(now) - pd.to_datetime(seen, utc=True)).dt.total_seconds()
        silent = cont[(age.isna() | (age > self.rules.vitals.monitor_silent_after_s)).to_numpy()]
        if len(silent):
            a = age[silent.index]
            parts.append(silent[["patient_id", "ward_id", "bed_id"]].assign(
                kind="vitals.sensor_silent", key="vitals.sensor_silent:" + silent["patient_id"], priority="medium",
                message="bedside monitor not reading" + np.where(a.isna(), "", " for " + a.fillna(0).round().astype(int).astype(str) + " s")))
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def _storage_conditions(self, now: datetime) -> pd.DataFrame:
        drugs = self.clinical.drugs.assign(location_id=self.clinical.drugs["drug_id"].map(self.drug_loc))
        ev = self.storage.evaluate(drugs, now, with_status=False)
        c = ev.conditions
        if c.empty:
            return c
        c = c.copy()
        c["details"] = [{**d, "suggested_location_id": s} for d, s in zip(c["details"], c["suggested_location_id"])]
        return c.drop(columns=["suggested_location_id"])

    def _waste_conditions(self, now: datetime) -> pd.DataFrame:
        if self.bins["fill_pct"].isna().all() and self.items.empty:
            return pd.DataFrame()
        bins = self.bins.assign(fill_pct=self.bins["fill_pct"].fillna(0.0))
        opened = bins["opened_at"]
        bins = bins.assign(opened_at=pd.to_datetime(opened, utc=True))
        items = self.items.assign(generated_at=pd.to_datetime(self.items["generated_at"], utc=True),
                                  seen_at=pd.to_datetime(self.items["seen_at"], utc=True))
        if self._trail_prepared is None:
            self._trail_prepared = HandlerTrail(self._trail) if len(self._trail) else None
        ev = waste_conditions(bins, items, self._disposal_rooms, now, handler_trail=self._trail_prepared,
                              rules=self.rules)
        return ev.conditions

    def _location_conditions(self, now: datetime) -> pd.DataFrame:
        p = self._presence()
        now_ms = to_ms(now)
        parts = []
        # geofence: an at-risk patient whose tag is in a room outside their ward
        risk = self.clinical.patients.loc[self.clinical.patients["wander_risk"], "patient_id"]
        pr = p[p["entity_id"].isin(risk) & p["room_id"].notna()]
        room_ward = pr["room_id"].map(self._rooms["ward_id"])
        out = pr[(room_ward.astype(object) != pr["home_ward"].astype(object)).to_numpy()]
        if len(out):
            bed = out["entity_id"].map(self.clinical.patients.set_index("patient_id")["bed_id"])
            parts.append(pd.DataFrame({
                "kind": "location.geofence", "key": "location.geofence:" + out["entity_id"].astype(str),
                "priority": "medium", "patient_id": out["entity_id"].to_numpy(object),
                "subject_id": out["tag_id"].to_numpy(object),
                "message": "at-risk patient (bed " + bed.astype(str).to_numpy(object) + ") has left the ward: now in "
                           + out["room_id"].map(self._rooms["name"]).fillna(out["room_id"]).astype(str).to_numpy(object),
                "ward_id": out["home_ward"].to_numpy(object), "room_id": out["room_id"].to_numpy(object),
                "floor_id": out["floor_id"].to_numpy(object), "x_m": out["x_m"].to_numpy(float), "y_m": out["y_m"].to_numpy(float)}))
        if self._duress:
            presses, self._duress = self._duress, []
            for tag, ts in presses:
                who = self._tag_entity.get(tag)
                here = p[p["tag_id"] == tag]
                row = here.iloc[0] if len(here) else None
                name = self._entities["short_name"].get(who, tag) if who is not None else tag
                room = None if row is None else row["room_id"]
                parts.append(pd.DataFrame([{
                    "kind": "location.duress", "key": f"location.duress:{who or tag}", "priority": "high",
                    "subject_id": who or tag, "room_id": room,
                    "floor_id": None if row is None else row["floor_id"],
                    "x_m": np.nan if row is None else row["x_m"], "y_m": np.nan if row is None else row["y_m"],
                    "exclude": (who,) if who else (),
                    "message": f"duress button pressed by {name} at {pd.Timestamp(ts).tz_convert(self.site.tz):%H:%M:%S} in "
                               f"{self._rooms['name'].get(room, room) if room else 'an unknown place'}"}]))
        low = self.battery[self.battery < self.rules.location.low_battery_pct]
        if len(low):
            ent = low.index.map(self._tag_entity).to_numpy(object)
            name = pd.Series(ent).map(self._entities["name"]).fillna(pd.Series(low.index)).to_numpy(object)
            here = p.set_index("tag_id").reindex(low.index)
            parts.append(pd.DataFrame({
                "kind": "tag.low_battery", "key": "tag.low_battery:" + low.index.astype(str),
                "priority": "low", "subject_id": low.index.to_numpy(object),
                "message": "tag battery " + low.round().astype(int).astype(str).to_numpy(object) + " % on " + name.astype(str),
                "room_id": here["room_id"].to_numpy(object), "floor_id": here["floor_id"].to_numpy(object),
                "x_m": here["x_m"].to_numpy(float), "y_m": here["y_m"].to_numpy(float)}))
        on = self.on_duty(now)
        age_s = (now_ms - p["last_seen_ms"].to_numpy(float)) / 1000.0
        kind_ok = p["kind"].isin(self.rules.location.silent_kinds).to_numpy()
        on_duty = p["entity_id"].map(on).eq(True).to_numpy() | (p["kind"] != "staff").to_numpy()
        gone = p[kind_ok & on_duty & (age_s > self.settings.unknown_after_s)]
        if len(gone):
            mins = ((now_ms - gone["last_seen_ms"].to_numpy(float)) / 60000).round().astype(int).astype(str)
            label = np.where(gone["kind"].eq("patient"), "patient tag (" + gone["entity_id"].astype(str) + ")",
                             gone["entity_id"].map(self._entities["name"]).astype(str))
            parts.append(pd.DataFrame({
                "kind": "tag.silent", "key": "tag.silent:" + gone["tag_id"].astype(str), "priority": "low",
                "subject_id": gone["tag_id"].to_numpy(object),
                "patient_id": np.where(gone["kind"].eq("patient"), gone["entity_id"], None),
                "message": label.astype(object) + " not heard for " + mins.astype(object) + " min",
                "ward_id": gone["home_ward"].to_numpy(object)}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    # ------------------------------------------------------------ persistence
    def _persist(self, now: datetime) -> None:
        events = self.engine.drain_events()
        now_s = pd.Timestamp(now).timestamp()
        flush = now_s - self._last_flush >= FLUSH_EVERY_S
        ids = {e.alarm_id for e in events}
        if flush:
            ids |= {a.alarm_id for a in self.engine.open_alarms()}
            self._last_flush = now_s
        if not ids:
            return
        with self.repo.engine.begin() as conn:
            t.save_alarms(conn, [self.engine.alarms[i] for i in sorted(ids)])
            t.save_events(conn, events)
            _audit(conn, events, self.engine.alarms, {})
            self._event_mark = max(self._event_mark, _max_event_id(conn))
        self._forget_closed()

    def _forget_closed(self) -> None:
        """Resolved alarms live in the store, not in memory (the engine only needs open ones)."""
        closed = [k for k, a in self.engine.alarms.items() if a.state not in OPEN_STATES]
        for k in closed:
            del self.engine.alarms[k]

    def _sync_remote(self) -> None:
        """Adopt transitions other processes wrote (acks, resolves, help requests)."""
        with self.repo.engine.connect() as conn:
            ev = conn.execute(select(t.alarm_events.c.id, t.alarm_events.c.alarm_id)
                              .where(t.alarm_events.c.id > self._event_mark, t.alarm_events.c.actor != "system")).all()
            if not ev:
                return
            self._event_mark = max(r.id for r in ev)
            for alarm_id in {r.alarm_id for r in ev}:
                a = t.load_alarm(conn, alarm_id)
                if a is not None:
                    _adopt(self.engine, a)

    def _maybe_purge(self, now: datetime) -> None:
        now_s = pd.Timestamp(now).timestamp()
        if now_s - self._last_purge < PURGE_EVERY_S:
            return
        self._last_purge = now_s
        purge_readings(self.repo.engine, to_ms(now) - int(self.settings.sensor_retention_days * 86400 * 1000))

    # ------------------------------------------------------------ user actions (live engine)
    def act(self, alarm_id: str, fn: Callable[[AlarmEngine], AlarmEvent], *, user: str, role: str) -> AlarmEvent:
        with self.lock:
            if alarm_id not in self.engine.alarms:
                with self.repo.engine.connect() as conn:
                    a = t.load_alarm(conn, alarm_id)
                if a is None:
                    raise UnknownAlarm(f"no alarm {alarm_id!r}")
                _adopt(self.engine, a)
            ev = fn(self.engine)
            self.engine.drain_events()
            with self.repo.engine.begin() as conn:
                t.save_alarms(conn, [self.engine.alarms[alarm_id]])
                t.save_events(conn, [ev])
                _audit(conn, [ev], self.engine.alarms, {user: role})
            self._forget_closed()
            return ev

    def raise_help(self, role_needed: str, room: dict, requester: str, now: datetime, *, user: str,
                   role: str) -> Alarm:
        with self.lock:
            alarm, events = self.engine.request_help(role_needed, room, requester, now, self.staff_presence(now))
            self.engine.drain_events()
            if events:
                with self.repo.engine.begin() as conn:
                    t.save_alarms(conn, [alarm])
                    t.save_events(conn, [AlarmEvent(e.alarm_id, e.ts, e.from_state, e.to_state, user, e.detail) for e in events])
                    _audit(conn, [AlarmEvent(e.alarm_id, e.ts, e.from_state, e.to_state, user, e.detail) for e in events],
                           self.engine.alarms, {user: role})
            return alarm


# ---------------------------------------------------------------- install and lookup
_LIVE: dict[str, AlarmService] = {}


def install(pipeline) -> AlarmService:
    """Composition-root entry (core.services FEATURES): attach the alarm tick hook."""
    svc = AlarmService(pipeline.site, pipeline.repo, pipeline.settings, tracker=pipeline.tracker,
                       simulate=pipeline.settings.feed == "sim")
    pipeline.hooks.append(svc.on_tick)
    _LIVE[_url(pipeline.repo)] = svc
    return svc


def live(repo) -> AlarmService | None:
    """The service running the feed in this process for this database, if any."""
    return _LIVE.get(_url(repo))


def _url(repo) -> str:
    return repo.engine.url.render_as_string(hide_password=True)


def submit_sensor_readings(df: pd.DataFrame, repo=None) -> int:
    """Production path: hand sensor readings to the live alarm service of this process (see
    AlarmService.submit_sensor_readings). Raises InvalidSensorReading when no service runs here."""
    svc = live(repo) if repo is not None else next(iter(_LIVE.values()), None)
    if svc is None:
        raise InvalidSensorReading("no alarm service runs in this process (start the feed first)")
    return svc.submit_sensor_readings(df)


# ---------------------------------------------------------------- actions for pages
def _check(role: str, kind: str) -> None:
    if not may_act(role, kind):
        perm = ack_permission(kind) or "a signed-in staff role"
        raise AccessDenied(f"role {role!r} may not act on {kind} alarms (needs {perm})")


def _transition(repo, alarm_id: str, fn: Callable[[AlarmEngine], AlarmEvent], *, user: str, role: str) -> AlarmEvent:
    with repo.engine.connect() as conn:
        alarm = t.load_alarm(conn, alarm_id)
    if alarm is None:
        raise UnknownAlarm(f"no alarm {alarm_id!r}")
    _check(role, alarm.kind)
    svc = live(repo)
    if svc is not None:
        return svc.act(alarm_id, fn, user=user, role=role)
    eng = AlarmEngine()
    eng.restore([alarm])
    ev = fn(eng)
    with repo.engine.begin() as conn:
        t.save_alarms(conn, [eng.alarms[alarm_id]])
        t.save_events(conn, [ev])
        _audit(conn, [ev], eng.alarms, {user: role})
    return ev


def acknowledge(repo, alarm_id: str, *, user: str, role: str, now: datetime, note: str = "") -> AlarmEvent:
    """Acknowledge (IEC 60601-1-8: silence + own it); refused without the kind's ack permission."""
    return _transition(repo, alarm_id, lambda e: e.acknowledge(alarm_id, user, now, note), user=user, role=role)


def resolve(repo, alarm_id: str, *, user: str, role: str, now: datetime, note: str = "") -> AlarmEvent:
    return _transition(repo, alarm_id, lambda e: e.resolve(alarm_id, user, now, note), user=user, role=role)


def accept_help(repo, alarm_id: str, *, user: str, role: str, now: datetime) -> AlarmEvent:
    return _transition(repo, alarm_id, lambda e: e.accept_help(alarm_id, user, now), user=user, role=role)


def decline_help(repo, site, alarm_id: str, *, user: str, role: str, now: datetime) -> AlarmEvent:
    staff = _staff_frame(_repo_presence(repo, site), site.on_duty(now), now, 60.0)
    return _transition(repo, alarm_id, lambda e: e.decline_help(alarm_id, user, now, staff), user=user, role=role)


HELP_ROLES = {"porter": "a porter (transfer)", "nurse": "a second pair of hands (nurse)",
              "hca": "a healthcare assistant", "charge_nurse": "the charge nurse"}


def request_help(repo, site, *, role_needed: str, room_id: str, requester: str, user: str, role: str,
                 now: datetime) -> Alarm:
    """A help request from a page: goes to the nearest available staff member with `role_needed`,
    escalating (charge nurse, ward manager) if nobody accepts."""
    if role_needed not in HELP_ROLES:
        raise InvalidInput(f"cannot request {role_needed!r}: one of {sorted(HELP_ROLES)}")
    if room_id not in set(site.rooms["room_id"]):
        raise InvalidInput(f"unknown room {room_id!r}")
    if roles.as_role(role) in (None, roles.Role.KIOSK):
        raise AccessDenied("sign in to ask for help")
    r = site.rooms.set_index("room_id").loc[room_id]
    room = {"room_id": room_id, "ward_id": r["ward_id"], "floor_id": r["floor_id"], "x_m": float(r["cx_m"]),
            "y_m": float(r["cy_m"])}
    svc = live(repo)
    if svc is not None:
        return svc.raise_help(role_needed, room, requester, now, user=user, role=role)
    with repo.engine.connect() as conn:
        eng = AlarmEngine()
        eng.restore(t.load_active(conn))
    staff = _staff_frame(_repo_presence(repo, site), site.on_duty(now), now, 60.0)
    alarm, events = eng.request_help(role_needed, room, requester, now, staff)
    events = [AlarmEvent(e.alarm_id, e.ts, e.from_state, e.to_state, user, e.detail) for e in events]
    if events:
        with repo.engine.begin() as conn:
            t.save_alarms(conn, [alarm])
            t.save_events(conn, events)
            _audit(conn, events, eng.alarms, {user: role})
    return alarm


# ---------------------------------------------------------------- reads for pages
def inbox(repo, ward_id: str | None = None) -> pd.DataFrame:
    """Open alarms (active, acknowledged, cleared-unacknowledged), highest priority first, then oldest."""
    with repo.engine.connect() as conn:
        alarms = t.load_active(conn)
    rows = [vars(a) for a in alarms if ward_id is None or a.ward_id == ward_id]
    if not rows:
        return pd.DataFrame(columns=[f for f in Alarm.__dataclass_fields__] + ["rank"])
    df = pd.DataFrame(rows)
    df["rank"] = df["priority"].map(PRIORITY_RANK)
    return df.sort_values(["rank", "raised_at", "alarm_id"], ascending=[False, True, True], ignore_index=True)


def alarm_history(repo, alarm_id: str) -> pd.DataFrame:
    with repo.engine.connect() as conn:
        evs = t.load_events(conn, alarm_id)
    return pd.DataFrame([vars(e) for e in evs], columns=["alarm_id", "ts", "from_state", "to_state", "actor", "detail"])


def alarm_rate(repo, site, now: datetime, days: float = 7.0, ward_id: str | None = None) -> pd.DataFrame:
    """Alarms raised per bed per day over the last `days` (alarm fatigue): one row per bed of the
    ward(s) (beds without alarms count as 0), with the kinds that fired most."""
    since = to_ms(now) - int(days * 86400 * 1000)
    with repo.engine.connect() as conn:
        df = _frame(conn, select(t.alarms.c.bed_id, t.alarms.c.kind, t.alarms.c.raised_ms)
                    .where(t.alarms.c.raised_ms >= since, t.alarms.c.bed_id.is_not(None)))
    beds = site.beds if ward_id is None else site.beds[site.beds["ward_id"] == ward_id]
    span_days = days
    if len(df):
        span_days = max(min(days, (to_ms(now) - int(df["raised_ms"].min())) / 86400000.0), 1 / 24)
    counts = df.groupby("bed_id").size() if len(df) else pd.Series(dtype=float)
    top = df.groupby("bed_id")["kind"].agg(lambda k: ", ".join(k.value_counts().index[:2])) if len(df) else pd.Series(dtype=object)
    out = pd.DataFrame({"bed_id": beds["bed_id"].to_numpy(), "ward_id": beds["ward_id"].to_numpy()})
    out["alarms"] = out["bed_id"].map(counts).fillna(0).astype(int)
    out["per_day"] = (out["alarms"] / span_days).round(1)
    out["top_kinds"] = out["bed_id"].map(top).astype(object).fillna("")
    return out.sort_values(["per_day", "bed_id"], ascending=[False, True], ignore_index=True)


def env_series(repo, location_id: str, since: datetime) -> pd.DataFrame:
    e = t.env_readings
    with repo.engine.connect() as conn:
        df = _frame(conn, select(e.c.ts_ms, e.c.temp_c, e.c.rh_pct, e.c.door_open)
                    .where(e.c.location_id == location_id, e.c.ts_ms >= to_ms(since)).order_by(e.c.ts_ms))
    return df.assign(ts=_ts(df["ts_ms"]) if len(df) else pd.Series(dtype="datetime64[ms, UTC]"))


def vital_series(repo, patient_id: str, since: datetime) -> pd.DataFrame:
    v = t.vital_readings
    with repo.engine.connect() as conn:
        df = _frame(conn, select(v).where(v.c.patient_id == patient_id, v.c.ts_ms >= to_ms(since)).order_by(v.c.ts_ms))
    return df.assign(ts=_ts(df["ts_ms"]) if len(df) else pd.Series(dtype="datetime64[ms, UTC]"))


def latest_vitals(repo, since: datetime) -> pd.DataFrame:
    """Each patient's latest scored observation set and latest reading of any kind since `since`."""
    v = t.vital_readings
    with repo.engine.connect() as conn:
        df = _frame(conn, select(v).where(v.c.ts_ms >= to_ms(since), v.c.status == "scored"))
    if df.empty:
        return df
    return df.sort_values("ts_ms").drop_duplicates("patient_id", keep="last").assign(ts=lambda d: _ts(d["ts_ms"]))


def waste_events_since(repo, since: datetime) -> pd.DataFrame:
    w = t.waste_events
    with repo.engine.connect() as conn:
        df = _frame(conn, select(w).where(w.c.ts_ms >= to_ms(since)).order_by(w.c.ts_ms))
    return df.assign(ts=_ts(df["ts_ms"]) if len(df) else pd.Series(dtype="datetime64[ms, UTC]"))


def bin_status(repo, clinical: Clinical, now: datetime, rules: RuleSet = DEFAULT_RULES) -> pd.DataFrame:
    """Every bin with fill level, age and the storage limit of its most perishable accepted category."""
    with repo.engine.connect() as conn:
        st = _frame(conn, select(t.waste_bin_state))
        items = _frame(conn, select(t.waste_item_state))
    b = clinical.bins.merge(st, on="bin_id", how="left")
    lim = {c: r.max_storage_s for c, r in rules.waste.items()}
    b["limit_h"] = b["accepts"].map(lambda a: min((lim.get(c) or np.inf) for c in a.split("|")) / 3600)
    b["age_h"] = (to_ms(now) - b["opened_ms"]) / 3600000.0
    b["items"] = b["bin_id"].map(items.groupby("bin_id").size() if len(items) else pd.Series(dtype=int)).fillna(0).astype(int)
    return b


def drug_positions(repo, clinical: Clinical) -> pd.DataFrame:
    with repo.engine.connect() as conn:
        pos = _frame(conn, select(t.drug_positions))
    d = clinical.drugs.copy()
    cur = pos.set_index("drug_id")["location_id"] if len(pos) else pd.Series(dtype=object)
    d["location_id"] = d["drug_id"].map(cur).astype(object).fillna(d["home_location_id"])
    return d


def rejected_summary(repo, since: datetime) -> pd.DataFrame:
    """Rejected readings since `since` per stream and reason (logger glitches, impossible vitals)."""
    r, v = t.sensor_rejects, t.vital_readings
    with repo.engine.connect() as conn:
        a = _frame(conn, select(r.c.stream, r.c.reason, func.count().label("count"))
                   .where(r.c.ts_ms >= to_ms(since)).group_by(r.c.stream, r.c.reason))
        b = _frame(conn, select(v.c.reason, func.count().label("count"))
                   .where(v.c.ts_ms >= to_ms(since), v.c.status == "impossible").group_by(v.c.reason))
    b = b.assign(stream="vitals")
    out = pd.concat([x for x in (a, b) if len(x)], ignore_index=True) if len(a) or len(b) else \
        pd.DataFrame(columns=["stream", "reason", "count"])
    return out[["stream", "reason", "count"]].sort_values("count", ascending=False, ignore_index=True)


def purge_readings(engine, older_than_ms: int) -> int:
    """Retention: delete readings and sensor rejects older than `older_than_ms` (alarms and their
    audit events are kept)."""
    n = 0
    with engine.begin() as conn:
        for table in t.READING_TABLES:
            n += conn.execute(delete(table).where(table.c.ts_ms < older_than_ms)).rowcount
    return n


# ---------------------------------------------------------------- helpers
def _audit(conn: Connection, events, alarms: dict, user_roles: dict) -> None:
    for e in events:
        a = alarms.get(e.alarm_id)
        if e.from_state is None:
            action = "alarm.raised"
        elif e.from_state != e.to_state:
            action = f"alarm.{e.to_state}"
        else:
            action = "alarm.escalated" if "escalated" in (e.detail or "") else "alarm.updated"
        audit.append(conn, ts=e.ts, actor=e.actor, role=user_roles.get(e.actor, "system"), action=action,
                     object_type="alarm", object_id=e.alarm_id, patient_id=a.patient_id if a else None,
                     detail={"kind": a.kind if a else None, "from": e.from_state, "to": e.to_state,
                             "level": a.escalation_level if a else None,
                             "to_role": a.escalated_to_role if a else None, "note": e.detail})


def _adopt(engine: AlarmEngine, a: Alarm) -> None:
    engine.alarms[a.alarm_id] = a
    if a.state in OPEN_STATES:
        engine._open_by_key[a.key] = a.alarm_id
    elif engine._open_by_key.get(a.key) == a.alarm_id:
        del engine._open_by_key[a.key]


def _max_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(t.alarm_events.c.id), 0))).scalar_one())


def _staff_frame(p: pd.DataFrame, on: pd.Series, now: datetime, fresh_s: float) -> pd.DataFrame:
    s = p[p["kind"] == "staff"]
    age_s = (to_ms(now) - s["last_seen_ms"].to_numpy(float)) / 1000.0
    fresh = (age_s <= max(fresh_s, 60.0)) & s["room_id"].notna().to_numpy()
    return pd.DataFrame({"staff_id": s["entity_id"].to_numpy(object), "role": s["subtype"].to_numpy(object),
                         "floor_id": s["floor_id"].to_numpy(object), "x_m": s["x_m"].to_numpy(float),
                         "y_m": s["y_m"].to_numpy(float),
                         "on_duty": s["entity_id"].map(on).fillna(False).to_numpy(bool) & fresh})


def _repo_presence(repo, site) -> pd.DataFrame:
    p = repo.presence()
    return p.assign(kind=p["kind"], subtype=p["subtype"]) if len(p) else \
        pd.DataFrame(columns=["entity_id", "kind", "subtype", "floor_id", "room_id", "x_m", "y_m", "last_seen_ms"])


def _last_in_room(events: pd.DataFrame, trail: pd.DataFrame) -> np.ndarray:
    from core.alarms.waste import last_handler
    if trail is None or trail.empty:
        return np.full(len(events), None, dtype=object)
    return last_handler(events, trail).to_numpy(object)


def _infer_stream(df: pd.DataFrame) -> str:
    cols = set(df.columns)
    if "temp_c" in cols and ({"location_id", "sensor_id"} & cols) and "patient_id" not in cols:
        return "env"
    if "patient_id" in cols:
        return "vitals"
    if {"drug_id", "location_id"} <= cols:
        return "drugs"
    if {"item_id", "event"} <= cols:
        return "waste"
    if {"bin_id", "fill_pct"} <= cols:
        return "bins"
    if {"tag_id", "event"} <= cols:
        return "badges"
    raise InvalidSensorReading(f"cannot tell which sensor stream has columns {sorted(cols)}; add a 'stream' column")


def _loc_of(env: pd.DataFrame, units: pd.DataFrame) -> pd.Series:
    """location_id, filled from sensor_id where a feed only names the sensor."""
    by_sensor = units.set_index("sensor_id")["location_id"]
    loc = env["location_id"] if "location_id" in env else pd.Series(None, index=env.index, dtype=object)
    if "sensor_id" in env:
        loc = loc.where(loc.notna(), env["sensor_id"].map(by_sensor))
    return loc


def _with_ts(df: pd.DataFrame) -> pd.DataFrame:
    if "ts" in df and len(df):
        return df.assign(ts=pd.to_datetime(df["ts"], utc=True, errors="coerce", format="ISO8601")
                         if df["ts"].dtype == object or str(df["ts"].dtype) == "str" else df["ts"])
    return df


def _col(df: pd.DataFrame, col: str):
    return df[col].to_numpy() if col in df else None


def _ts(ms) -> pd.DatetimeIndex:
    return pd.to_datetime(pd.Series(ms, dtype="float64").to_numpy(), unit="ms", utc=True)


def _ts_series(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, errors="coerce")


def _ms(ts: pd.Series) -> np.ndarray:
    return pd.to_datetime(ts, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def _records(df: pd.DataFrame) -> list[dict]:
    out = df.astype(object).where(df.notna(), None)
    return out.to_dict(orient="records")


def _frame(conn: Connection, stmt) -> pd.DataFrame:
    res = conn.execute(stmt)
    return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def since_hours(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)
