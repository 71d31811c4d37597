"""Run every benchmark under bench/ and print one table.

    python -m bench                 # full sizes, about 2–3 minutes on a 2-core machine
    python -m bench --only floorplan presence
    python -m bench --quick         # tiny sizes: checks that everything runs (not a measurement)

PostgreSQL rows need WARDSIGHT_PG_URL (`source .ci/services.sh`); the geopandas column needs
`pip install geopandas` (a benchmark-only dependency). Longer benchmarks owned by other features
run on their own: `python bench/bench_operations.py`, `python bench/positioning_eval.py`.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import traceback

from bench.common import ROOT, Row, format_table

# name → (module, full-size kwargs, quick kwargs)
BENCHES = {
    "floorplan": ("bench.bench_floorplan", {}, dict(n_points=2_000, cols=4, rows=3, naive_points=20,
                                                     near_points=500, repeat=1)),
    "presence": ("bench.bench_presence", {}, dict(n=5_000, tags=300, naive_rows=200, memory_tags=1_000, repeat=1)),
    "proximity": ("bench.bench_proximity", {}, dict(n_beds=200, n_people=50, naive_people=10, repeat=1)),
    "figure": ("bench.bench_figure", {}, dict(n_markers=300, cols=4, rows=3, repeat=1)),
    "ingest": ("bench.bench_ingest", {}, dict(tags=1_200, ticks=2, scale_ticks=1)),
    "pages": ("bench.bench_pages", {}, dict(screens=(1, 2), reruns=1)),
}
SEPARATE = ["python bench/bench_operations.py   (90 days × 1,000 beds, about 40 s)",
            "python bench/positioning_eval.py   (needs WARDSIGHT_EXTERNAL_DIR)"]


def run_one(name: str, quick: bool) -> list[Row]:
    module, full, small = BENCHES[name]
    mod = __import__(module, fromlist=["run"])
    try:
        return mod.run(**(small if quick else full))
    except Exception as exc:  # noqa: BLE001 - one broken bench must not hide the others' numbers
        traceback.print_exc()
        return [Row(name, f"FAILED: {exc.__class__.__name__}: {exc}"[:120], ok=False)]


def alarms_row() -> Row:
    """Headline of bench/bench_alarms.py (owned by the alarms feature), run as it is documented."""
    out = subprocess.run([sys.executable, "bench/bench_alarms.py"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300).stdout
    ours = re.search(r"ours\s*:\s*([\d.]+) ms", out)
    naive = re.search(r"naive\s*:\s*([\d.]+) ms", out)
    if not ours:
        return Row("alarm rules, one tick for 1,000 beds (bench_alarms.py)", "no result (see its output)", ok=False)
    o = float(ours.group(1))
    n = float(naive.group(1)) if naive else None
    return Row("alarm rules, one tick for 1,000 beds (bench_alarms.py)", f"{o:.0f} ms CPU",
               f"{n:.0f} ms (per-row loop)" if n else "—", ratios=f"{n / o:.1f}× naive" if n else "—",
               target="≤ 100 ms", ok=o <= 100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES) + ["alarms"], help="run only these")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, numbers mean nothing)")
    args = ap.parse_args(argv)
    names = args.only or list(BENCHES) + ["alarms"]
    t0 = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        if name == "alarms":
            if not args.quick:
                rows.append(alarms_row())
            continue
        rows += run_one(name, args.quick)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(format_table(rows))
    print()
    for r in rows:
        for note in r.notes:
            print(f"- {r.path.split(':')[0]}: {note}")
    print(f"\n{sum(r.ok is True for r in rows)} PASS, {sum(r.ok is False for r in rows)} MISS; "
          f"{time.perf_counter() - t0:.0f} s; load average {load:.1f} on {os.cpu_count()} cores"
          + ("  (QUICK: tiny sizes, not a measurement)" if args.quick else ""))
    print("Run separately: " + "; ".join(SEPARATE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
