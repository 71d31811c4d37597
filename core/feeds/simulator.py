"""A seeded simulated hospital feed: staff walk corridors between rooms, patients mostly stay in bed,
porters move wheelchairs and mobile beds, and every tag reports about once a second as either

* a position read (RTLS engine / omlox hub shape): ts, tag_id, x_m, y_m, floor_id, or
* a reader read (LLRP tag-report shape): ts, tag_id, reader_id, antenna, rssi_dbm,

with position noise, stray reads from the next room, dropped reads and (at `fault_rate`) the bad
input real feeds carry: unknown tags, positive RSSI, clock skew, duplicates, missing coordinates.

Motion is vectorised over agents; only agents that reach a waypoint (a few per cent per tick) run
Python code to plan the next leg.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from core.site import Site

WALK_MPS = {"staff": 1.2, "patient": 0.6, "device": 1.0}
CORRIDOR_Y_M = 8.5
POSITION_NOISE_M = 0.25
OUTLIER_RATE = 0.01
DROP_RATE = 0.05
STRAY_READ_RATE = 0.03

# destination mix per role: (room_type or "bed", weight, dwell range s)
ROLE_PLANS = {
    "nurse": [("bed", 70, (60, 300)), ("nurses_station", 15, (60, 240)), ("medication", 8, (60, 180)),
              ("dirty_utility", 5, (30, 90)), ("staff_room", 2, (300, 900))],
    "charge_nurse": [("bed", 40, (60, 180)), ("nurses_station", 50, (120, 480)), ("medication", 10, (60, 120))],
    "hca": [("bed", 60, (60, 300)), ("dirty_utility", 20, (30, 120)), ("equipment_store", 10, (30, 90)),
            ("staff_room", 10, (300, 900))],
    "doctor": [("bed", 70, (120, 480)), ("nurses_station", 30, (120, 600))],
    "cleaner": [("any", 100, (120, 400))],
    "pharmacist": [("medication", 60, (300, 900)), ("nurses_station", 40, (120, 300))],
    "porter": [("porter_job", 100, (20, 60))],
    "ward_manager": [("nurses_station", 100, (300, 900))],
}


class HospitalSimulator:
    """`step(now)` advances the world to `now` and returns that tick's raw reads (one DataFrame)."""

    def __init__(self, site: Site, seed: int = 7, fault_rate: float = 0.002, start: datetime | None = None):
        self.site, self.rng, self.fault_rate = site, np.random.default_rng(seed), fault_rate
        tags = site.tags.merge(site.entities, on="entity_id")
        self.tag_id = tags["tag_id"].to_numpy(dtype=object)
        self.entity_id = tags["entity_id"].to_numpy(dtype=object)
        self.kind = tags["kind"].to_numpy(dtype=object)
        self.role = tags["subtype"].fillna("").to_numpy(dtype=object)
        self.ward = tags["ward_id"].fillna("").to_numpy(dtype=object)
        self.reader_shape = (tags["read_shape"] == "reader").to_numpy()
        n = len(tags)
        self.floor_ids = np.array(sorted(site.floors), dtype=object)
        self.floor = np.zeros(n, dtype=np.int16)
        self.pos = np.zeros((n, 2))
        self.target = np.zeros((n, 2))
        self.target_floor = np.zeros(n, dtype=np.int16)
        self.moving = np.zeros(n, dtype=bool)
        self.dwell_until = np.zeros(n)
        # a few device tags with a loose battery contact drop out for 90 s every 5 min, so the map
        # shows Stale (faded) markers the way a real ward does
        self.flaky = np.zeros(n, dtype=bool)
        dev = np.flatnonzero(self.kind == "device")
        if dev.size:
            # drawn from a separate stream so the motion of everything else is unchanged by this
            self.flaky[np.random.default_rng([seed, 99]).choice(dev, size=min(3, dev.size), replace=False)] = True
        # active (RTLS) badges report their battery; a few are nearly flat so low-battery alarms show
        self.battery_pct = np.where(self.rng.random(n) < 0.04, self.rng.uniform(5, 14, n), self.rng.uniform(25, 100, n))
        self.speed = np.array([WALK_MPS.get(k, 1.0) for k in self.kind]) * self.rng.uniform(0.85, 1.15, n)
        self.route: list[list[tuple[int, float, float]]] = [[] for _ in range(n)]
        self.room = np.empty(n, dtype=object)
        self.carried_by = np.full(n, -1)            # device index → porter index
        self.job: dict[int, tuple[int, str]] = {}   # porter → (device, destination room)
        self._drop_at: dict[int, tuple[int, str]] = {}
        self._home = site.entities.set_index("entity_id")["home_id"].to_dict()
        self.t = 0.0
        self.start = start
        self.last_now: datetime | None = None
        self._rooms = site.rooms.set_index("room_id")
        self._beds = site.beds.set_index("bed_id")
        self._floor_index = {f: i for i, f in enumerate(self.floor_ids)}
        self._index_site()
        self._init_positions()
        self._readers = site.readers.reset_index(drop=True)
        self._reader_trees = self._build_reader_trees()

    def _index_site(self) -> None:
        """Plain dicts and per-ward / per-floor lists of the site tables: planning an agent's next
        leg then costs dict look-ups, not DataFrame filtering (which is O(site) per agent)."""
        site = self.site
        self._room = {rid: rec for rid, rec in zip(self._rooms.index, self._rooms.to_dict("records"))}
        self._bed = {bid: rec for bid, rec in zip(self._beds.index, self._beds.to_dict("records"))}
        self._room_bounds = {rid: g.bounds for plan in site.floors.values()
                             for rid, g in zip(plan.rooms["id"], plan.rooms["geometry"])}
        self._status = site.entities.set_index("entity_id")["status"].to_dict()
        beds = site.beds
        self._beds_of_ward = {w: g["bed_id"].to_numpy() for w, g in beds.groupby("ward_id", sort=False, dropna=False)}
        rooms = site.rooms
        walkable = rooms[~rooms["room_type"].isin(["corridor", "lift_lobby"])]
        self._rooms_of_floor = {f: g["room_id"] for f, g in walkable.groupby("floor_id", sort=False)}
        self._rooms_of_type = {t: g["room_id"].to_numpy() for t, g in rooms.groupby("room_type", sort=False)}
        self._ward_ids = site.wards["ward_id"]

    # ---------- set-up ----------
    def _room_point(self, room_id: str, spread: float = 0.35) -> tuple[float, float]:
        minx, miny, maxx, maxy = self._room_bounds[room_id]
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        return (cx + self.rng.uniform(-spread, spread) * (maxx - minx),
                cy + self.rng.uniform(-spread, spread) * (maxy - miny))

    def _bed_point(self, bed_id: str, bedside: bool) -> tuple[float, float]:
        b = self._bed[bed_id]
        if not bedside:
            return float(b["cx_m"]), float(b["cy_m"])
        return float(b["cx_m"]) + self.rng.choice([-1.0, 1.0]) * self.rng.uniform(0.75, 0.95), float(b["cy_m"])

    def _place(self, i: int, room_id: str, xy: tuple[float, float]) -> None:
        self.room[i] = room_id
        self.floor[i] = self._floor_index[self._room[room_id]["floor_id"]]
        self.pos[i] = xy
        self.target[i] = xy
        self.target_floor[i] = self.floor[i]

    def _init_positions(self) -> None:
        site = self.site
        home = site.entities.set_index("entity_id")["home_id"]
        wards = site.wards["ward_id"].tolist()
        devices_at_beds = site.beds["bed_id"].tolist()
        for i, (eid, kind) in enumerate(zip(self.entity_id, self.kind)):
            if kind == "patient":
                bed = home[eid]
                self._place(i, self._bed[bed]["room_id"], self._bed_point(bed, bedside=False))
            elif kind == "device":
                status = self._status[eid]
                if status == "in_use":
                    bed = devices_at_beds[int(self.rng.integers(len(devices_at_beds)))]
                    x, y = self._bed_point(bed, bedside=True)
                    self._place(i, self._bed[bed]["room_id"], (x, y + self.rng.uniform(-0.8, 0.8)))
                else:
                    self._place(i, home[eid], self._room_point(home[eid]))
            else:
                ward = self.ward[i] or wards[i % len(wards)]
                room = f"{ward}-NS" if f"{ward}-NS" in self._room else self._rooms.index[0]
                self._place(i, room, self._room_point(room))
            self.dwell_until[i] = self.rng.uniform(0, 60 if kind == "staff" else 900)

    # ---------- planning (per arriving agent) ----------
    def _route(self, i: int, dest_room: str, dest_xy: tuple[float, float]) -> list[tuple[int, float, float]]:
        """Waypoints from the agent's room to `dest_xy`: out of the door, along the corridor (through
        the lift lobby when the floor changes), in at the destination door."""
        src = self._room[self.room[i]]
        dst = self._room[dest_room]
        f_src, f_dst = self._floor_index[src["floor_id"]], self._floor_index[dst["floor_id"]]
        pts: list[tuple[int, float, float]] = []
        if src["room_type"] != "corridor":
            pts += [(f_src, src["door_x_m"], src["door_y_m"])]
        pts += [(f_src, src["door_x_m"], CORRIDOR_Y_M)]
        if f_src != f_dst:
            lob_a = self._room[f"{src['floor_id']}-LIFT"]
            lob_b = self._room[f"{dst['floor_id']}-LIFT"]
            pts += [(f_src, lob_a["cx_m"], CORRIDOR_Y_M), (f_dst, lob_b["cx_m"], CORRIDOR_Y_M)]
        pts += [(f_dst, dst["door_x_m"], CORRIDOR_Y_M)]
        if dst["room_type"] != "corridor":
            pts += [(f_dst, dst["door_x_m"], dst["door_y_m"])]
        pts += [(f_dst, dest_xy[0], dest_xy[1])]
        return pts

    def _choose(self, i: int) -> tuple[str, tuple[float, float], float] | None:
        kind, role = self.kind[i], self.role[i]
        if kind == "patient":
            bed = self._home[self.entity_id[i]]
            bed_room = self._bed[bed]["room_id"]
            if self.room[i] != bed_room:                       # back to bed
                return bed_room, self._bed_point(bed, False), self.rng.uniform(1800, 7200)
            if self.rng.random() < 0.04:                       # an occasional walk to the toilet
                ward = self._room[bed_room]["ward_id"]
                toilet = f"{ward}-PT1"
                return toilet, self._room_point(toilet, 0.2), self.rng.uniform(120, 400)
            return None
        if kind != "staff":
            return None
        plan = ROLE_PLANS.get(role, ROLE_PLANS["nurse"])
        weights = np.array([p[1] for p in plan], dtype=float)
        what, _, (d0, d1) = plan[int(self.rng.choice(len(plan), p=weights / weights.sum()))]
        dwell = self.rng.uniform(d0, d1)
        ward = self.ward[i] or self._room[self.room[i]]["ward_id"] or self._ward_ids.iloc[0]
        if what == "bed":
            if role == "doctor" and self.rng.random() < 0.1:
                ward = self._ward_ids.iloc[int(self.rng.integers(len(self._ward_ids)))]
            beds = self._beds_of_ward.get(ward, np.empty(0, dtype=object))
            bed = beds[int(self.rng.integers(len(beds)))]
            return self._bed[bed]["room_id"], self._bed_point(bed, True), dwell
        if what == "any":
            cands = self._rooms_of_floor.get(self.floor_ids[self.floor[i]], self._ward_ids.iloc[:0])
            room = cands.iloc[int(self.rng.integers(len(cands)))]
            return room, self._room_point(room), dwell
        if what == "porter_job":
            return self._porter_job(i, dwell)
        room = f"{ward}-" + {"nurses_station": "NS", "medication": "MED", "dirty_utility": "DU",
                             "equipment_store": "EQ", "staff_room": "SR"}[what]
        return room, self._room_point(room), dwell

    def _porter_job(self, i: int, dwell: float) -> tuple[str, tuple[float, float], float]:
        if i in self.job:                                      # arrived at the device: pick it up
            dev, dest = self.job.pop(i)
            self.carried_by[dev] = i
            self._drop_at[i] = (dev, dest)
            return dest, self._room_point(dest), dwell
        if i in self._drop_at:                                 # arrived with the device: put it down
            dev, _ = self._drop_at.pop(i)
            self.carried_by[dev] = -1
            self.room[dev] = self.room[i]
        movable = np.flatnonzero(self.reader_shape & (self.kind == "device") & (self.carried_by < 0))
        if movable.size == 0:
            return self.room[i], self._room_point(self.room[i]), dwell
        dev = int(movable[int(self.rng.integers(movable.size))])
        dest_type = "equipment_store" if self.rng.random() < 0.5 else "bay"
        cands = self._rooms_of_type.get(dest_type, np.empty(0, dtype=object))
        self.job[i] = (dev, cands[int(self.rng.integers(cands.size))])
        return self.room[dev], (float(self.pos[dev, 0]), float(self.pos[dev, 1])), 5.0

    # ---------- tick ----------
    def step(self, now: datetime) -> pd.DataFrame:
        """Advance to `now` (tz-aware) and return this tick's raw reads."""
        if self.last_now is None:
            dt = 1.0
        else:
            dt = max(0.0, (now - self.last_now).total_seconds())
        self.last_now = now
        self.t += dt
        self.battery_pct = np.maximum(0.0, self.battery_pct - dt * 1e-5)   # ≈ 1 % a day
        self._move(dt)
        self._plan_arrivals()
        return self._emit(now)

    def _move(self, dt: float) -> None:
        carried = self.carried_by >= 0
        go = self.moving & ~carried
        if go.any():
            d = self.target[go] - self.pos[go]
            dist = np.hypot(d[:, 0], d[:, 1])
            stepm = self.speed[go] * dt
            arrive = dist <= stepm
            frac = np.where(arrive, 1.0, stepm / np.maximum(dist, 1e-9))
            self.pos[go] += d * frac[:, None]
            idx = np.flatnonzero(go)
            self._arrived = idx[arrive]
        else:
            self._arrived = np.empty(0, dtype=int)
        if carried.any():
            porters = self.carried_by[carried]
            self.pos[carried] = self.pos[porters] + 0.5
            self.floor[carried] = self.floor[porters]

    def _plan_arrivals(self) -> None:
        for i in self._arrived:
            if self.route[i]:
                f, x, y = self.route[i].pop(0)
                if f != self.floor[i]:
                    self.floor[i] = f                          # the lift
                self.target[i] = (x, y)
                continue
            self.moving[i] = False
        idle = np.flatnonzero(~self.moving & (self.dwell_until <= self.t) & (self.carried_by < 0))
        for i in idle:
            choice = self._choose(int(i))
            if choice is None:
                self.dwell_until[i] = self.t + self.rng.uniform(300, 1200)
                continue
            room, xy, dwell = choice
            self.route[i] = self._route(int(i), room, xy)
            self.room[i] = room
            f, x, y = self.route[i].pop(0)
            self.target[i] = (x, y)
            self.moving[i] = True
            self.dwell_until[i] = self.t + dwell + 0.0

    def _emit(self, now: datetime) -> pd.DataFrame:
        n = self.tag_id.size
        active = self._tracked(now) & (self.rng.random(n) > DROP_RATE)
        if (now.timestamp() % 300.0) < 90.0:
            active &= ~self.flaky
        ts = pd.Timestamp(now).tz_convert("UTC") - pd.to_timedelta(self.rng.uniform(0, 0.4, n), unit="s")
        pos_rows = np.flatnonzero(active & ~self.reader_shape)
        noise = self.rng.normal(0, POSITION_NOISE_M, (pos_rows.size, 2))
        outlier = self.rng.random(pos_rows.size) < OUTLIER_RATE
        noise[outlier] *= 12.0
        xy = self.pos[pos_rows] + noise
        positions = pd.DataFrame({"ts": ts[pos_rows], "tag_id": self.tag_id[pos_rows], "reader_id": None,
                                  "antenna": np.nan, "rssi_dbm": np.nan,
                                  "x_m": xy[:, 0].round(2), "y_m": xy[:, 1].round(2),
                                  "floor_id": self.floor_ids[self.floor[pos_rows]],
                                  "battery_pct": self.battery_pct[pos_rows].round(0)})
        reads = self._reader_reads(np.flatnonzero(active & self.reader_shape), ts)
        out = pd.concat([positions, reads], ignore_index=True)
        if self.fault_rate > 0:
            out = self._faults(out, now)
        return out

    def _tracked(self, now: datetime) -> np.ndarray:
        """Off-duty staff badges are not on the floor (they report nothing)."""
        minute = int(now.timestamp() // 60)
        if getattr(self, "_duty_minute", None) != minute:
            od = self.site.on_duty(now)
            self._duty = np.array([od.get(e, True) if k == "staff" else True
                                   for e, k in zip(self.entity_id, self.kind)])
            self._duty_minute = minute
        return self._duty

    def _build_reader_trees(self) -> dict[int, tuple[np.ndarray, cKDTree]] | None:
        """One KD-tree of antennas per floor (None when a floor has fewer than 4 antennas: the
        stray read takes the 4th nearest, so such sites use the dense distance matrix)."""
        rd = self._readers
        rfloor = rd["floor_id"].map(self._floor_index).to_numpy()
        rxy = rd[["x_m", "y_m"]].to_numpy(dtype=float)
        trees = {}
        for f in range(len(self.floor_ids)):
            idx = np.flatnonzero(rfloor == f)
            if idx.size < 4:
                return None
            trees[f] = (idx, cKDTree(rxy[idx]))
        return trees

    def _nearest_antennas(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nearest, 4th nearest, hypot distances to all used antennas) on the tag's own floor."""
        rd = self._readers
        rxy = rd[["x_m", "y_m"]].to_numpy(dtype=float)
        if self._reader_trees is None:
            rfloor = rd["floor_id"].map(self._floor_index).to_numpy()
            d = np.hypot(self.pos[rows, None, 0] - rxy[None, :, 0], self.pos[rows, None, 1] - rxy[None, :, 1])
            d[self.floor[rows, None] != rfloor[None, :]] = np.inf
            return np.argmin(d, axis=1), np.argsort(d, axis=1)[:, 3], rxy
        best, fourth = np.empty(rows.size, dtype=np.intp), np.empty(rows.size, dtype=np.intp)
        for f in np.unique(self.floor[rows]):
            m = self.floor[rows] == f
            idx, tree = self._reader_trees[int(f)]
            _, k = tree.query(self.pos[rows[m]], k=4)
            cand = idx[k]
            p = self.pos[rows[m]]
            d = np.hypot(p[:, None, 0] - rxy[cand, 0], p[:, None, 1] - rxy[cand, 1])
            # equidistant antennas: the lower index, as argmin over the dense matrix picks
            tie_free = np.where(d == d.min(axis=1, keepdims=True), cand, np.iinfo(np.intp).max)
            best[m], fourth[m] = tie_free.min(axis=1), cand[:, 3]
        return best, fourth, rxy

    def _reader_reads(self, rows: np.ndarray, ts: pd.DatetimeIndex) -> pd.DataFrame:
        rd = self._readers
        if rows.size == 0:
            return pd.DataFrame(columns=["ts", "tag_id", "reader_id", "antenna", "rssi_dbm", "x_m", "y_m", "floor_id"])
        best, second, rxy = self._nearest_antennas(rows)
        stray = self.rng.random(rows.size) < STRAY_READ_RATE
        best = np.where(stray, second, best)
        dist = np.hypot(self.pos[rows, 0] - rxy[best, 0], self.pos[rows, 1] - rxy[best, 1])
        rssi = -40.0 - 20.0 * np.log10(np.maximum(dist, 0.3) + 1.0) + self.rng.normal(0, 2.0, rows.size)
        return pd.DataFrame({"ts": ts[rows], "tag_id": self.tag_id[rows], "reader_id": rd["reader_id"].to_numpy()[best],
                             "antenna": rd["antenna"].to_numpy()[best].astype(float), "rssi_dbm": rssi.round(1),
                             "x_m": np.nan, "y_m": np.nan, "floor_id": None})

    def _faults(self, reads: pd.DataFrame, now: datetime) -> pd.DataFrame:
        k = self.rng.binomial(len(reads), self.fault_rate) if len(reads) else 0
        if k == 0:
            return reads
        bad = reads.sample(n=k, random_state=int(self.rng.integers(1 << 31))).copy()
        kinds = self.rng.integers(0, 5, k)
        bad.loc[kinds == 0, "tag_id"] = "E280FFFF00000000DEADBEEF"                     # unknown tag
        bad.loc[(kinds == 1) & bad["reader_id"].notna(), "rssi_dbm"] = 12.0            # positive RSSI
        bad.loc[(kinds == 1) & bad["reader_id"].isna(), "x_m"] = np.nan                # no coordinates
        bad.loc[kinds == 2, "ts"] = pd.Timestamp(now + timedelta(minutes=10))          # reader clock skew
        # kinds 3-4 stay unchanged copies: a redelivered (duplicate) read
        return pd.concat([reads, bad], ignore_index=True)
