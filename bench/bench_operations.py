"""Operations page at hospital scale: 90 days × 1,000 beds (synthetic, seeded).

Times (1) building the daily rollup once, (2) rendering every rollup-backed aggregate of the page,
(3) the same page from raw frames with the vectorised functions, (4) a naive per-row Python loop
over the raw alarms, bedside sessions and device intervals (the obvious code a page might
otherwise run). Target: (2) ≤ 2 s.

    python bench/bench_operations.py [--days 90] [--beds 1000] [--seed 7]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.operations import (DEFAULT_TZ, assign_shift, daily_rollup, operations_page,  # noqa: E402
                             operations_page_raw)

BEDS_PER_WARD = 25
ALARMS_PER_BED_DAY = 5
SESSIONS_PER_BED_DAY = 10
DEVICES_PER_BED = 1.5
STATUS_CHANGES_PER_DEVICE_DAY = 8


def _times(rng, start_ns: int, n: int, span_s: int) -> np.ndarray:
    return start_ns + rng.integers(0, span_s, n).astype("int64") * 1_000_000_000


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


def generate(days: int, beds: int, seed: int):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz=DEFAULT_TZ)
    s_ns, span = start.tz_convert("UTC").value, days * 86_400
    wards = np.array([f"W{i:02d}" for i in range(beds // BEDS_PER_WARD)])

    n = days * beds * ALARMS_PER_BED_DAY
    raised = _times(rng, s_ns, n, span)
    ack = raised + rng.exponential(90, n).astype("int64") * 1_000_000_000
    res = ack + rng.exponential(900, n).astype("int64") * 1_000_000_000
    alarms = pd.DataFrame({
        "alarm_id": np.arange(n).astype(str), "kind": rng.choice(["news2", "fridge", "waste", "device"], n),
        "ward_id": rng.choice(wards, n), "priority": rng.choice(["high", "medium", "low"], n),
        "raised_at": _utc(raised), "acknowledged_at": _utc(np.where(rng.random(n) < 0.97, ack, np.iinfo("int64").min)),
        "resolved_at": _utc(np.where(rng.random(n) < 0.95, res, np.iinfo("int64").min)),
        "escalation_level": rng.choice([0, 0, 0, 1, 2], n)})

    n = days * beds * SESSIONS_PER_BED_DAY
    s0 = _times(rng, s_ns, n, span)
    dur = rng.integers(60, 1200, n).astype("int64") * 1_000_000_000
    staff = rng.integers(0, beds * 2, n).astype(str)
    ward = rng.choice(wards, n)
    sessions = pd.DataFrame({"staff_id": staff, "ward_id": ward, "start": _utc(s0), "end": _utc(s0 + dur)})
    room_events = pd.DataFrame({"staff_id": np.concatenate([staff, staff]), "ward_id": np.concatenate([ward, ward]),
                                "room_id": "R", "ts": _utc(np.concatenate([s0 - 10**10, s0 + dur + 10**10])),
                                "event": np.repeat(["enter", "exit"], n)})
    used = rng.random(2 * n) < 0.7
    jitter = rng.integers(-40, 40, 2 * n).astype("int64") * 1_000_000_000
    dispensers = pd.DataFrame({"staff_id": room_events["staff_id"][used].to_numpy(),
                               "ts": _utc(room_events["ts"].astype("int64").to_numpy()[used] + jitter[used])})

    n_dev = int(beds * DEVICES_PER_BED)
    per = days * STATUS_CHANGES_PER_DEVICE_DAY
    dev = np.repeat(np.arange(n_dev), per)
    cuts = np.sort(rng.integers(0, span, (n_dev, per)), axis=1).astype("int64") * 1_000_000_000 + s_ns
    ends = np.concatenate([cuts[:, 1:], np.full((n_dev, 1), s_ns + span * 1_000_000_000)], axis=1)
    dev_ward = rng.choice(wards, n_dev)
    devices = pd.DataFrame({"device_id": dev.astype(str), "ward_id": dev_ward[dev],
                            "device_type": np.array(["pump", "monitor", "scale"])[dev % 3],
                            "status": rng.choice(["in_use", "idle", "cleaning"], dev.size, p=[.6, .3, .1]),
                            "start": _utc(cuts.ravel()), "end": _utc(ends.ravel())})
    bed_table = pd.DataFrame({"ward_id": wards, "beds": BEDS_PER_WARD})
    return start, start + pd.Timedelta(days=days), alarms, sessions, devices, room_events, dispensers, bed_table


def naive_page(alarms, sessions, devices, start, end):
    """Per-row Python loops: what the page would cost without vectorising or pre-aggregating."""
    s, e = start.tz_convert("UTC"), end.tz_convert("UTC")
    ack = defaultdict(list)
    esc = defaultdict(lambda: [0, 0])
    for row in alarms.itertuples(index=False):
        if s <= row.raised_at < e:
            hour = row.raised_at.tz_convert(DEFAULT_TZ).hour
            key = (row.kind, row.ward_id, "day" if 7 <= hour < 19 else "night")
            if row.acknowledged_at is not pd.NaT:
                ack[key].append((row.acknowledged_at - row.raised_at).total_seconds())
            esc[key[:2]][0] += 1
            esc[key[:2]][1] += row.escalation_level > 0
    medians = {k: float(np.median(v)) for k, v in ack.items()}
    bedside = defaultdict(float)
    for row in sessions.itertuples(index=False):
        lo, hi = max(row.start, s), min(row.end, e)
        if hi > lo:
            hour = lo.tz_convert(DEFAULT_TZ).hour
            bedside[(row.ward_id, "day" if 7 <= hour < 19 else "night")] += (hi - lo).total_seconds()
    util = defaultdict(float)
    for row in devices.itertuples(index=False):
        lo, hi = max(row.start, s), min(row.end, e)
        if hi > lo:
            util[(row.ward_id, row.device_type, row.status)] += (hi - lo).total_seconds()
    return medians, esc, bedside, util


def full_frames(seed, start, end, alarms, sessions, devices, room_events, dispensers, beds):
    """The page's other (small) frames at the same scale: bed stays, excursions, disposals, bins, par."""
    from core.ops_data import OpsFrames
    from core.ops_history import _renewal
    rng = np.random.default_rng(seed + 1)
    s_ns, e_ns = start.tz_convert("UTC").value, end.tz_convert("UTC").value
    n_beds = int(beds["beds"].sum())
    bed_ward = np.repeat(beds["ward_id"].to_numpy(), beds["beds"].to_numpy())
    unit, state, st, en = _renewal(rng, n_beds, s_ns, e_ns, np.array([110.0, 5.0]), 0.7)
    occ = state == 0
    stays = pd.DataFrame({"bed_id": unit[occ].astype(str), "ward_id": bed_ward[unit[occ]],
                          "start": _utc(st[occ]), "end": _utc(en[occ])})
    n = int(3 * n_beds * (e_ns - s_ns) / 86_400e9)
    cat = rng.choice(["sharps", "infectious", "general"], n)
    disposals = pd.DataFrame({"ward_id": rng.choice(beds["ward_id"].to_numpy(), n), "ts": _utc(_times(rng, s_ns, n, int((e_ns - s_ns) // 1e9))),
                              "waste_category": cat, "bin_category": np.where(rng.random(n) < 0.04, "general", cat)})
    unit, _, st, en = _renewal(rng, len(beds) * 3, s_ns, e_ns, np.array([30.0]), 0.5)
    bins = pd.DataFrame({"bin_id": np.arange(len(unit)).astype(str), "ward_id": beds["ward_id"].to_numpy()[unit // 3],
                         "category": np.array(["sharps", "infectious", "general"])[unit % 3],
                         "opened_at": _utc(st), "collected_at": _utc(en).where(en < e_ns)})
    k = int(0.1 * len(beds) * (e_ns - s_ns) / 86_400e9)
    x0 = _times(rng, s_ns, k, int((e_ns - s_ns) // 1e9))
    dur = rng.integers(600, 7200, k)
    excursions = pd.DataFrame({"location_id": rng.choice(beds["ward_id"].to_numpy(), k) + "-fridge", "start": _utc(x0),
                               "end": _utc(x0 + dur * 1_000_000_000), "duration_s": dur.astype(float),
                               "drugs_affected": rng.integers(1, 7, k), "mkt_c": rng.uniform(8.5, 12, k)})
    excursions["ward_id"] = excursions["location_id"].str[:3]
    par = pd.DataFrame({"ward_id": np.repeat(beds["ward_id"].to_numpy(), 3),
                        "device_type": np.tile(["pump", "monitor", "scale"], len(beds)), "par": 3})
    return OpsFrames(alarms, sessions, devices, room_events, dispensers, stays, excursions, disposals, bins, beds, par)


def page_as_rendered(frames, rollup, start, end) -> float:
    """What pages/operations.py does per selector change: every table (core.ops_data.page_tables)
    and every figure (ui.ops_ui), for 90 days × all wards and for 7 days × one ward; plus the
    cost of a cache hit (st.cache_data unpickles the stored tables)."""
    import pickle
    from core import ops_data
    from ui import ops_ui
    ops_ui.ward_names = lambda: {}            # no Streamlit site in a bench
    now = end - pd.Timedelta(hours=1)

    def render(fr, ro, s):
        t = ops_data.page_tables(fr, ro, s, end, now, DEFAULT_TZ, 48.0)
        figs = [ops_ui.response_figure(t["response_hist"], m, split, "x")
                for m in ("time_to_ack_s", "time_to_resolve_s") for split in ("kind",)]
        figs += [ops_ui.escalation_figure(t["escalation"]), ops_ui.load_figure(t["alarm_load"]),
                 ops_ui.daily_figure(t["daily_alarms"]), ops_ui.wrong_bin_figure(t["waste"]),
                 ops_ui.utilisation_figure(t["device_utilisation"]), ops_ui.occupancy_figure(t["occupancy"]),
                 ops_ui.by_ward_shift_figure(t["hand_hygiene"], "compliance", "x", "y", pct=True),
                 ops_ui.by_ward_shift_figure(t["bedside"].assign(m=t["bedside"]["bedside_s"] / 60), "m", "x", "y", pct=False)]
        for f in figs:
            f.to_plotly_json()
        return t

    tables, t_all = timed("page tables + 10 figures: 90 d, all wards", render, frames, rollup, start)
    ward = frames.beds["ward_id"].iloc[0]
    fw, rw = ops_data.for_wards(frames, [ward]), ops_data.rollup_for_wards(rollup, [ward])
    timed("page tables + 10 figures: 7 d, one ward", render, fw, rw, end - pd.Timedelta(days=7))
    blob = pickle.dumps(tables)
    timed(f"cache hit: unpickle the tables ({len(blob) / 1e6:.1f} MB)", pickle.loads, blob)
    return t_all


def timed(label: str, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    elapsed = time.perf_counter() - t0
    print(f"{label:<52} {elapsed:8.3f} s")
    return out, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--naive", action="store_true", help="also time the naive per-row loops (~20 s)")
    args = ap.parse_args()
    (start, end, alarms, sessions, devices, room_events, dispensers, beds), _ = timed(
        f"generate {args.days} d × {args.beds} beds", generate, args.days, args.beds, args.seed)
    print(f"  alarms {len(alarms):,}  sessions {len(sessions):,}  device intervals {len(devices):,}  "
          f"room events {len(room_events):,}  dispenser uses {len(dispensers):,}")
    rollup, t_build = timed("build daily rollup (once; nightly in production)", daily_rollup,
                            alarms, sessions, devices, room_events, dispensers, start, end)
    print(f"  rollup rows: " + ", ".join(f"{k} {len(v):,}" for k, v in rollup._asdict().items()))
    page, t_roll = timed("page from rollup (all aggregates)", operations_page, rollup, beds, start, end)
    _, t_raw = timed("page from raw, vectorised", operations_page_raw, alarms, sessions, devices,
                     room_events, dispensers, beds, start, end)
    print(f"ratio raw-vectorised / rollup : {t_raw / t_roll:8.1f}×")
    if args.naive:
        _, t_naive = timed("naive loops (alarms, bedside, devices only)", naive_page, alarms, sessions, devices,
                           start, end)
        print(f"ratio naive(partial) / rollup : {t_naive / t_roll:8.1f}×")
    frames = full_frames(args.seed, start, end, alarms, sessions, devices, room_events, dispensers, beds)
    t_page = page_as_rendered(frames, rollup, start, end)
    print(f"target page ≤ 2 s: {'OK' if t_page <= 2.0 else 'MISSED'} ({t_page:.3f} s, 90 d, all wards, cache miss)")
    esc = page["escalation"]
    print(f"sanity: {int(esc['alarms'].sum()):,} alarms on the page = {len(alarms):,} generated; "
          f"night share {float((assign_shift(alarms['raised_at'].head(10000))['shift'] == 'night').mean()):.2f}")


if __name__ == "__main__":
    main()
