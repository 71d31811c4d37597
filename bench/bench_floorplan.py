"""Zone lookup: 1,000,000 positions → room and bed on a 500-room, 2,000-bed floor.

    python -m bench.bench_floorplan

ours     FloorPlan.locate (raster label grid; exact per-candidate test in cells a boundary crosses)
naive    a loop of polygon.contains(Point) over every room and bed (sampled, extrapolated)
library  geopandas.sjoin (rooms, then beds), predicate "intersects" like ours
Exactness: every answer is compared with an exact STRtree query (first polygon that intersects the
point), on the 1 M uniform points and on points within 1 cm of a boundary.
"""
from __future__ import annotations

import time

import numpy as np
import shapely

from bench.common import Row, best_of, near_boundary_points, ratio, rate, synthetic_floor
from core.floorplan import FloorPlan


def exact_reference(geoms: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index of the first polygon that intersects each point (−1: none); the slow, obvious answer."""
    out = np.full(x.size, -1, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    for lo in range(0, x.size, 250_000):
        src, hit = tree.query(shapely.points(x[lo:lo + 250_000], y[lo:lo + 250_000]), predicate="intersects")
        order = np.lexsort((hit, src))
        src, hit = src[order], hit[order]
        first = np.r_[True, src[1:] != src[:-1]]     # the smallest polygon index per point
        out[lo + src[first]] = hit[first]
    return out


def _ids(plan: FloorPlan, kind: str, idx: np.ndarray) -> np.ndarray:
    ids = plan.rooms["id"] if kind == "room" else plan.beds["id"]
    return np.append(ids.to_numpy(dtype=object), None)[idx]


def naive_rate(plan: FloorPlan, x: np.ndarray, y: np.ndarray) -> float:
    from shapely.geometry import Point
    rooms, beds = list(plan.rooms["geometry"]), list(plan.beds["geometry"])
    t0 = time.perf_counter()
    for px, py in zip(x, y):
        p = Point(px, py)
        next((i for i, g in enumerate(rooms) if g.contains(p)), None)
        next((i for i, g in enumerate(beds) if g.contains(p)), None)
    return x.size / (time.perf_counter() - t0)


def sjoin_seconds(plan: FloorPlan, x: np.ndarray, y: np.ndarray) -> float | None:
    try:
        import geopandas as gpd
    except ImportError:
        return None
    rooms = gpd.GeoDataFrame({"room_id": plan.rooms["id"].to_numpy()}, geometry=plan.rooms["geometry"].to_numpy())
    beds = gpd.GeoDataFrame({"bed_id": plan.beds["id"].to_numpy()}, geometry=plan.beds["geometry"].to_numpy())

    def run():
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y))
        r = gpd.sjoin(pts, rooms, how="left", predicate="intersects")
        b = gpd.sjoin(pts, beds, how="left", predicate="intersects")
        return r[~r.index.duplicated()], b[~b.index.duplicated()]
    seconds, _ = best_of(run, repeat=1)
    return seconds


def run(n_points: int = 1_000_000, cols: int = 25, rows: int = 20, naive_points: int = 300,
        near_points: int = 200_000, repeat: int = 5) -> list[Row]:
    plan = FloorPlan.from_geojson(synthetic_floor(cols, rows), floor_id="bench")
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = plan.bounds
    x, y = rng.uniform(x0 - 1, x1 + 1, n_points), rng.uniform(y0 - 1, y1 + 1, n_points)
    build_s, _ = best_of(lambda: plan.locate(x[:10], y[:10]), repeat=1)     # first call builds the grids
    ours_s, got = best_of(lambda: plan.locate(x, y), repeat=repeat)

    # exactness on uniform points and on points within 1 cm of a wall or bed edge
    mism = 0
    nx_, ny_ = near_boundary_points(plan, near_points, 0.01)
    near = plan.locate(nx_, ny_)
    for gx, gy, frame in ((x, y, got), (nx_, ny_, near)):
        for kind, col in (("room", "room_id"), ("bed", "bed_id")):
            geoms = (plan.rooms if kind == "room" else plan.beds)["geometry"].to_numpy()
            want = _ids(plan, kind, exact_reference(geoms, gx, gy))
            mism += int((frame[col].to_numpy(dtype=object) != want).sum())

    n_naive = min(naive_points, n_points)
    naive = naive_rate(plan, x[:n_naive], y[:n_naive])
    sj_s = sjoin_seconds(plan, x, y)
    ours_rate = n_points / ours_s
    lib = "not installed" if sj_s is None else f"{rate(n_points, sj_s)} (geopandas.sjoin)"
    ratios = f"{ours_rate / naive:,.0f}× naive" + ("" if sj_s is None else f", {ratio(sj_s, ours_s)} sjoin")
    ok = ours_rate >= 10e6 and (sj_s is None or sj_s / ours_s >= 20) and mism == 0
    row = Row(f"zone lookup: {n_points:,} positions → {len(plan.rooms)} rooms, {len(plan.beds):,} beds",
              rate(n_points, ours_s) + " positions", f"{rate(1, 1 / naive)} (polygon.contains loop, sampled)", lib,
              ratios, "≥ 10 M/s, ≥ 20× sjoin, exact", ok,
              [f"grid build {build_s:.2f} s once per plan",
               f"{mism} answers differ from an exact STRtree query over {n_points:,} uniform + "
               f"{near_points:,} points within 1 cm of a boundary"])
    return [row]


if __name__ == "__main__":
    from bench.common import format_table
    rows = run()
    print(format_table(rows))
    for r in rows:
        print("\n".join("  " + n for n in r.notes))
