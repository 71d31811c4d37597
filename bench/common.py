"""Shared pieces of the benchmarks: timing, the result row every bench returns, and the synthetic
inputs (a 500-room floor, a many-ward hospital site folder).

Timing on a shared 2-core machine: every number is the best (minimum) of a few repeats of wall time,
because the minimum is the run least disturbed by other processes; ratios compare numbers measured
in the same run.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- timing and rows

def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """(best wall seconds, result of the last call) over `repeat` calls."""
    best, out = math.inf, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def cpu_of(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


@dataclass
class Row:
    """One line of the benchmark table. Values are display strings; `ok` is None when the row has
    no target (information only) and False/True for MISS/PASS."""
    path: str
    ours: str
    baseline: str = "—"
    library: str = "—"
    ratios: str = "—"
    target: str = "—"
    ok: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else ("PASS" if self.ok else "MISS")


def rate(n: float, seconds: float, unit: str = "/s") -> str:
    """Human rate: 12.3 M/s, 456 k/s."""
    r = n / seconds if seconds > 0 else math.inf
    if r >= 1e6:
        return f"{r / 1e6:.1f} M{unit}"
    if r >= 1e3:
        return f"{r / 1e3:.0f} k{unit}"
    return f"{r:.0f}{unit}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ratio(slow_s: float, fast_s: float) -> str:
    return f"{slow_s / fast_s:,.0f}×" if fast_s > 0 and slow_s / fast_s >= 10 else \
        (f"{slow_s / fast_s:.1f}×" if fast_s > 0 else "—")


def format_table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal and pasteable into docs)."""
    head = ["hot path", "ours", "naive baseline", "library", "ratios", "target", "result"]
    body = [[r.path, r.ours, r.baseline, r.library, r.ratios, r.target, r.verdict] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


# ---------------------------------------------------------------- synthetic floor: 500 rooms, 2,000 beds

def _poly(ring: list) -> dict:
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def synthetic_floor(cols: int = 25, rows: int = 20, beds_per_room: int = 4, seed: int = 11) -> dict:
    """A floor that tiles `cols × rows` rooms (7 m × 5 m) on a jittered vertex grid, so neighbouring
    rooms share slanted walls (no axis-aligned shortcut), with `beds_per_room` 0.9 m × 2.0 m beds
    (rotated a little) in each room. GeoJSON FeatureCollection in metres."""
    rng = np.random.default_rng(seed)
    w_m, h_m = 7.0, 5.0
    gx = np.arange(cols + 1)[None, :] * w_m + rng.uniform(-0.4, 0.4, (rows + 1, cols + 1))
    gy = np.arange(rows + 1)[:, None] * h_m + rng.uniform(-0.4, 0.4, (rows + 1, cols + 1))
    gx[:, 0], gx[:, -1], gy[0, :], gy[-1, :] = 0.0, cols * w_m, 0.0, rows * h_m
    feats = []
    offsets = (np.arange(beds_per_room) - (beds_per_room - 1) / 2) * 1.6
    for j in range(rows):
        for i in range(cols):
            rid = f"R{j:02d}{i:02d}"
            ring = [[gx[j, i], gy[j, i]], [gx[j, i + 1], gy[j, i + 1]], [gx[j + 1, i + 1], gy[j + 1, i + 1]],
                    [gx[j + 1, i], gy[j + 1, i]]]
            feats.append({"type": "Feature", "geometry": _poly([[float(a), float(b)] for a, b in ring]),
                          "properties": {"type": "room", "id": rid, "name": f"Room {j}-{i}", "room_type": "bay"}})
            cx, cy = float(np.mean([p[0] for p in ring])), float(np.mean([p[1] for p in ring]))
            for k, dx in enumerate(offsets):
                a = rng.uniform(-0.15, 0.15)                     # a few degrees of rotation
                c, s = math.cos(a), math.sin(a)
                corners = [(-0.45, -1.0), (0.45, -1.0), (0.45, 1.0), (-0.45, 1.0)]
                bed = [[cx + dx + c * u - s * v, cy + s * u + c * v] for u, v in corners]
                feats.append({"type": "Feature", "geometry": _poly(bed),
                              "properties": {"type": "bed", "id": f"{rid}-{k + 1}", "room_id": rid}})
    return {"type": "FeatureCollection", "name": "Synthetic floor", "features": feats}


def near_boundary_points(plan, n: int, within_m: float, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """`n` points within `within_m` of a room or bed boundary (the hard cases for a raster lookup)."""
    import shapely
    rng = np.random.default_rng(seed)
    geoms = np.concatenate([plan.rooms["geometry"].to_numpy(), plan.beds["geometry"].to_numpy()])
    rings = shapely.get_exterior_ring(geoms)
    pick = rng.integers(0, len(rings), n)
    along = rng.uniform(0, 1, n) * shapely.length(rings[pick])
    pts = shapely.line_interpolate_point(rings[pick], along)
    xy = shapely.get_coordinates(pts)
    ang = rng.uniform(0, 2 * math.pi, n)
    r = rng.uniform(0, within_m, n)
    return xy[:, 0] + r * np.cos(ang), xy[:, 1] + r * np.sin(ang)


# ---------------------------------------------------------------- synthetic hospital site folder

DEVICE_MIX = [("infusion_pump", 0.35), ("monitor", 0.25), ("wheelchair", 0.2), ("mobile_bed", 0.2)]
STAFF_MIX = [("nurse", 0.5), ("charge_nurse", 0.05), ("hca", 0.2), ("doctor", 0.15), ("porter", 0.04),
             ("cleaner", 0.04), ("pharmacist", 0.02)]


def write_hospital(out_dir: Path, *, floors: int, wards_per_floor: int, tags: int, seed: int = 3) -> Path:
    """A site folder in the `sample_data/` format, built with the sample site's ward layout builder:
    `floors × wards_per_floor` wards (22 beds each), one patient per bed, ~8 % staff, the rest
    devices. Returns the folder (load it with `core.site.load_site`)."""
    from core import sample_site as ss
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "floors").mkdir(parents=True, exist_ok=True)
    readers, wards, floor_meta, beds = [], [], [], []
    for f in range(floors):
        fid = f"F{f + 1}"
        feats = []
        for w in range(wards_per_floor):
            wid = f"W{f + 1}{chr(65 + w)}" if wards_per_floor <= 26 else f"W{f + 1}_{w}"
            fr, rr = ss._ward_features(wid, w * ss.WARD_W_M)
            feats += fr
            readers += [dict(r, floor_id=fid) for r in rr]
            wards.append({"ward_id": wid, "name": f"Ward {wid}", "floor_id": fid})
            beds += [(ft["properties"]["id"], wid) for ft in fr if ft["properties"]["type"] == "bed"]
        lf, lr = ss._lobby(fid, wards_per_floor * ss.WARD_W_M)
        feats += lf
        readers += [dict(r, floor_id=fid) for r in lr]
        fc = {"type": "FeatureCollection", "name": f"Floor {f + 1}", "floor_id": fid,
              "crs": {"type": "name", "properties": {"name": "local-metres"}}, "features": feats}
        (out_dir / "floors" / f"{fid}.geojson").write_text(json.dumps(fc))
        floor_meta.append({"floor_id": fid, "name": f"Floor {f + 1}", "level": f + 1, "file": f"floors/{fid}.geojson"})
    site = {"site_id": "bench", "name": "Benchmark hospital", "timezone": ss.SITE_TZ,
            "floors": floor_meta, "wards": wards}
    (out_dir / "site.json").write_text(json.dumps(site))

    epc = iter(f"E280{k:020X}" for k in range(1, 10 ** 9))
    ward_ids = [w["ward_id"] for w in wards]
    patients = [{"patient_id": f"P{i + 1:05d}", "tag_id": next(epc), "mrn": f"MRN{i + 1:07d}", "given": "Pat",
                 "family": f"Ient{i}", "short_name": "P.I.", "birth_date": "1950-01-01", "sex": "female",
                 "ward_id": w, "bed_id": b, "fall_risk": "False"} for i, (b, w) in enumerate(beds)]
    n_staff = max(len(STAFF_MIX), int(0.08 * tags))
    roles = rng.choice([r for r, _ in STAFF_MIX], n_staff, p=[p for _, p in STAFF_MIX])
    staff = [{"staff_id": f"S{i + 1:05d}", "tag_id": next(epc), "name": f"Staff {i + 1}", "short_name": "ST",
              "role": r, "ward_id": "" if r in ("porter", "cleaner", "pharmacist") else ward_ids[i % len(ward_ids)],
              "shift": "day" if i % 2 == 0 else "night"} for i, r in enumerate(roles)]
    n_dev = max(0, tags - len(patients) - len(staff))
    dtypes = rng.choice([d for d, _ in DEVICE_MIX], n_dev, p=[p for _, p in DEVICE_MIX])
    status = np.where(np.isin(dtypes, ["infusion_pump", "monitor"]) & (rng.random(n_dev) < 0.6), "in_use",
                      np.where(rng.random(n_dev) < 0.1, "cleaning", "available"))
    devices = [{"device_id": f"D{i + 1:05d}", "tag_id": next(epc), "device_type": d, "name": f"{d} {i + 1}",
                "ward_id": ward_ids[i % len(ward_ids)], "home_room_id": f"{ward_ids[i % len(ward_ids)]}-EQ",
                "status": s} for i, (d, s) in enumerate(zip(dtypes, status))]
    for name, rows in (("readers", readers), ("staff", staff), ("patients", patients), ("devices", devices)):
        with open(out_dir / f"{name}.csv", "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)
    return out_dir


def hospital(tmp: Path, tags: int, *, wards_per_floor: int = 5):
    """Load (building once per folder) a hospital site of about `tags` tags with a ward per ~1,100 tags."""
    from core.site import load_site
    wards = max(1, round(tags / 1100))
    floors = max(1, math.ceil(wards / wards_per_floor))
    folder = Path(tmp) / f"hospital-{tags}"
    if not (folder / "site.json").exists():
        write_hospital(folder, floors=floors, wards_per_floor=min(wards_per_floor, wards), tags=tags)
    return load_site(folder)
