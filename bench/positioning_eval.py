"""Positioning accuracy on the Position Annotated BLE RSSI Dataset (Danis et al., CC0).

    python bench/positioning_eval.py [--data DIR]

DIR defaults to $WARDSIGHT_EXTERNAL_DIR/ble_rssi_position_annotated. Each of the 9 walked
trajectories is one batch; every estimate is compared with the camera ground truth interpolated at
the estimate's time. The path-loss P0 is calibrated on the stationary fingerprint (hst_sample) only,
never on a trajectory.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.feeds.mbd import read_dev, read_mbd, read_occ  # noqa: E402
from core.positioning import (PathLossModel, calibrate_p0, estimate_positions_with_report,  # noqa: E402
                              nearest_reader_positions, weighted_centroid_positions)

HST_POINT_XYZ_M = (10.36, 10.95, 1.90)   # encoded in the fingerprint's file name


def load(data: Path):
    readers = read_dev(data / "cnf" / "tetam.dev")
    walkable = read_occ(data / "occ" / "tetam_0.5.occ")
    tracks = {p.name.removesuffix("_all_sensors.mbd"): read_mbd(p)
              for p in sorted((data / "trk").glob("*_all_sensors.mbd"))}
    return readers, walkable, tracks


def errors_m(positions: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Distance from each estimate to the ground truth interpolated at the estimate's ts."""
    truth = truth.sort_values("ts")
    t = truth["ts"].astype("int64").to_numpy()
    at = positions["ts"].astype("int64").to_numpy()
    gx = np.interp(at, t, truth["true_x_m"].to_numpy())
    gy = np.interp(at, t, truth["true_y_m"].to_numpy())
    return np.hypot(positions["x_m"].to_numpy() - gx, positions["y_m"].to_numpy() - gy)


def evaluate(data: Path) -> dict:
    readers, walkable, tracks = load(data)
    hst = read_mbd(next((data / "hst_sample").glob("*.mbd")))
    p0_dbm = calibrate_p0(hst, readers, HST_POINT_XYZ_M)
    model = PathLossModel(p0_dbm=p0_dbm)
    methods = {
        "ours": lambda r: estimate_positions_with_report(r, readers, walkable=walkable, model=model),
        "ours causal": lambda r: estimate_positions_with_report(r, readers, walkable=walkable,
                                                                model=model, smooth=False),
        "ours no floor plan": lambda r: estimate_positions_with_report(r, readers, model=model),
        "nearest sensor": lambda r: (nearest_reader_positions(r, readers), None),
        "weighted centroid 3": lambda r: (weighted_centroid_positions(r, readers), None),
    }
    errs = {m: {} for m in methods}
    seconds = {m: 0.0 for m in methods}
    rejected = []
    for name, reads in tracks.items():
        truth = reads[reads["rssi_dbm"] < 0]
        for method, run in methods.items():
            start = time.perf_counter()
            positions, rej = run(reads)
            seconds[method] += time.perf_counter() - start
            errs[method][name] = errors_m(positions, truth)
            if method == "ours":
                rejected.append(rej.assign(trajectory=name))
    return {"errs": errs, "seconds": seconds, "rejected": pd.concat(rejected, ignore_index=True),
            "p0_dbm": p0_dbm}


def _cell(e: np.ndarray) -> str:
    return f"{np.median(e):5.2f} {np.percentile(e, 90):5.2f}"


def report(result: dict) -> str:
    errs = result["errs"]
    methods = list(errs)
    names = list(errs[methods[0]])
    head = f"{'trajectory':30s} {'n':>4s} " + " ".join(f"{m[:19]:>19s}" for m in methods)
    lines = [f"P0 calibrated on hst_sample: {result['p0_dbm']:.2f} dBm at 1 m (n = 2.0)",
             "error in metres: median p90", head, "-" * len(head)]
    for name in names:
        lines.append(f"{name:30s} {len(errs['ours'][name]):4d} "
                     + " ".join(f"{_cell(errs[m][name]):>19s}" for m in methods))
    total = {m: np.concatenate(list(errs[m].values())) for m in methods}
    lines.append("-" * len(head))
    lines.append(f"{'ALL':30s} {len(total['ours']):4d} "
                 + " ".join(f"{_cell(total[m]):>19s}" for m in methods))
    lines.append("throughput (estimates/s): " + ", ".join(
        f"{m} {len(total[m]) / max(result['seconds'][m], 1e-9):,.0f}" for m in methods))
    rej = result["rejected"]
    lines.append(f"rejected reads: {len(rej)}")
    lines += [f"  {r.trajectory} {r.ts} {r.reader_id}: {r.reason}" for r in rej.itertuples()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    default = Path(os.environ.get("WARDSIGHT_EXTERNAL_DIR", "")) / "ble_rssi_position_annotated"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args(argv)
    if not (args.data / "trk").is_dir():
        parser.error(f"{args.data} has no trk/ folder; pass --data or set WARDSIGHT_EXTERNAL_DIR")
    start = time.perf_counter()
    print(report(evaluate(args.data)))
    print(f"total runtime {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
