"""Proximity: which of 5,000 beds is each of 2,000 clinicians within 2.5 m of.

    python -m bench.bench_proximity

ours     core.locate.BedIndex.within (static cKDTree of beds, built once; per call a tree of the
         clinicians and sparse_distance_matrix)
naive    nested Python loops over clinicians × beds (sampled clinicians, extrapolated)
library  shapely 2 STRtree.query(points, predicate="dwithin") over bed points (tree built once)
"""
from __future__ import annotations

import math
import time

import numpy as np
import shapely

from bench.common import Row, best_of, ms, ratio
from core.locate import BedIndex


def layout(n_beds: int, n_people: int, seed: int = 8):
    """Beds on a hospital-like grid (2.2 m apart in bays); half the clinicians at a bedside."""
    rng = np.random.default_rng(seed)
    cols = int(math.ceil(math.sqrt(n_beds * 2)))
    k = np.arange(n_beds)
    bx, by = (k % cols) * 2.2, (k // cols) * 4.0
    at_bed = rng.random(n_people) < 0.5
    pick = rng.integers(0, n_beds, n_people)
    px = np.where(at_bed, bx[pick] + rng.uniform(-1.2, 1.2, n_people), rng.uniform(0, bx.max(), n_people))
    py = np.where(at_bed, by[pick] + rng.uniform(-1.0, 1.0, n_people), rng.uniform(0, by.max(), n_people))
    return np.array([f"B{i}" for i in k], dtype=object), bx, by, px, py


def naive_pairs(px, py, bx, by, r):
    out = []
    for i in range(len(px)):
        for j in range(len(bx)):
            d = math.hypot(px[i] - bx[j], py[i] - by[j])
            if d < r:
                out.append((i, j, d))
    return out


def run(n_beds: int = 5_000, n_people: int = 2_000, within_m: float = 2.5, naive_people: int = 100,
        repeat: int = 20) -> list[Row]:
    ids, bx, by, px, py = layout(n_beds, n_people)
    index = BedIndex(ids, bx, by)
    ours_s, (who, bed, dist) = best_of(lambda: index.within(px, py, within_m), repeat=repeat)
    tree = shapely.STRtree(shapely.points(bx, by))
    lib_s, (src, hit) = best_of(lambda: tree.query(shapely.points(px, py), predicate="dwithin", distance=within_m),
                                repeat=max(3, repeat // 4))
    k = min(naive_people, n_people)
    t0 = time.perf_counter()
    naive = naive_pairs(px[:k], py[:k], bx, by, within_m)
    naive_s = (time.perf_counter() - t0) * n_people / k
    # same pairs as the exact double loop on the sampled clinicians (dwithin includes d == r)
    mine = {(int(i), int(j)) for i, j in zip(who, bed) if i < k}
    agree = mine == {(i, j) for i, j, _ in naive}
    return [Row(f"proximity: {n_people:,} clinicians × {n_beds:,} beds within {within_m} m",
                f"{ms(ours_s)} ({who.size:,} pairs)", f"{ms(naive_s)} (nested loops, sampled)",
                f"{ms(lib_s)} (shapely STRtree dwithin)", f"{ratio(naive_s, ours_s)} naive, {ratio(lib_s, ours_s)} STRtree",
                "≤ 3 ms", ours_s <= 0.003 and agree,
                [f"pairs agree with the double loop on {k} clinicians: {agree}; "
                 f"STRtree found {src.size:,} pairs"])]


if __name__ == "__main__":
    from bench.common import format_table
    print(format_table(run()))
