"""Latest state per tag (1 M reads, 20 k tags) and the memory of 50 k tags' presence state.

    python -m bench.bench_presence

ours     core.presence.latest_per_tag
naive    DataFrame.iterrows keeping a dict of the newest read per tag (sampled, extrapolated)
library  pandas groupby("tag_id")["ts"].idxmax() + loc
Memory: PresenceTracker for 50 k tags after every tag has reported (tracemalloc for numpy/Python
objects plus pyarrow's allocator for pandas string columns).
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pandas as pd

from bench.common import Row, best_of, rate, ratio
from core.presence import PresenceTracker, latest_per_tag

T0 = pd.Timestamp("2026-11-21T09:00:00Z")


def reads(n: int, tags: int, seed: int = 2) -> pd.DataFrame:
    """`n` reads of `tags` tags over an hour, in arrival order (not time order: late reads exist)."""
    rng = np.random.default_rng(seed)
    tag_ids = np.array([f"E280{k:020X}" for k in range(tags)], dtype=object)
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, 3_600_000, n)), unit="ms")
    late = rng.random(n) < 0.05                                   # 5 % delivered up to 30 s late
    ts = ts.where(~late, ts - pd.to_timedelta(rng.integers(0, 30_000, n), unit="ms"))
    return pd.DataFrame({"tag_id": pd.Series(tag_ids[rng.integers(0, tags, n)], dtype="str"),
                         "ts": ts, "x_m": rng.uniform(0, 100, n), "y_m": rng.uniform(0, 50, n)})


def naive_latest(df: pd.DataFrame) -> dict:
    best: dict = {}
    for _, r in df.iterrows():
        cur = best.get(r["tag_id"])
        if cur is None or r["ts"] >= cur["ts"]:
            best[r["tag_id"]] = r
    return best


def library_latest(df: pd.DataFrame) -> pd.DataFrame:
    return df.loc[df.groupby("tag_id", sort=False)["ts"].idxmax()]


def tracker_bytes(tags: int) -> int:
    """Bytes held by a PresenceTracker of `tags` tags once every tag has a place."""
    import pyarrow as pa
    rng = np.random.default_rng(4)
    tag_frame = pd.DataFrame({"tag_id": [f"E280{k:020X}" for k in range(tags)],
                              "entity_id": [f"D{k:06d}" for k in range(tags)]})
    located = pd.DataFrame({"tag_id": tag_frame["tag_id"], "ts": T0,
                            "floor_id": "F" + pd.Series(rng.integers(1, 10, tags)).astype(str),
                            "room_id": "R" + pd.Series(rng.integers(0, 900, tags)).astype(str),
                            "bed_id": None, "x_m": rng.uniform(0, 200, tags), "y_m": rng.uniform(0, 17, tags)})
    tracemalloc.start()
    pa0 = pa.total_allocated_bytes()
    base, _ = tracemalloc.get_traced_memory()
    tracker = PresenceTracker(tag_frame)
    tracker.update(located)
    del located
    used = tracemalloc.get_traced_memory()[0] - base + pa.total_allocated_bytes() - pa0
    tracemalloc.stop()
    assert tracker.known.all()
    return used


def run(n: int = 1_000_000, tags: int = 20_000, naive_rows: int = 20_000, memory_tags: int = 50_000,
        repeat: int = 5) -> list[Row]:
    df = reads(n, tags)
    ours_s, got = best_of(lambda: latest_per_tag(df), repeat=repeat)
    lib_s, want = best_of(lambda: library_latest(df), repeat=max(1, repeat // 2))
    same = got.set_index("tag_id")["ts"].sort_index().equals(want.set_index("tag_id")["ts"].sort_index())
    k = min(naive_rows, n)
    t0 = time.perf_counter()
    naive_latest(df.iloc[:k])
    naive_rate = k / (time.perf_counter() - t0)
    ours_rate = n / ours_s
    rows = [Row(f"latest state per tag: {n:,} reads, {tags:,} tags", rate(n, ours_s) + " reads",
                f"{rate(1, 1 / naive_rate)} (iterrows, sampled)", f"{rate(n, lib_s)} (groupby idxmax)",
                f"{ours_rate / naive_rate:,.0f}× naive, {ratio(lib_s, ours_s)} groupby",
                "≥ 20 M reads/s", ours_rate >= 20e6 and same,
                [f"same newest read per tag as groupby idxmax: {same}"])]
    used = tracker_bytes(memory_tags)
    rows.append(Row(f"state of {memory_tags:,} tags in memory (PresenceTracker)", f"{used / 2**20:.1f} MB",
                    target="≤ 100 MB", ok=used <= 100 * 2**20))
    return rows


if __name__ == "__main__":
    from bench.common import format_table
    print(format_table(run()))
