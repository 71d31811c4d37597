"""Floor-map figure: 500 rooms + 10,000 markers, built and serialised to JSON.

    python -m bench.bench_figure

ours     ui.figures: base_figure (rooms, beds, labels: built once per floor and cached, as the page
         does) + add_markers on a copy (one Scattergl per legend category) + Figure.to_json()
naive    one go.Scatter trace per room and per marker category in SVG mode with a colour string per
         marker, then to_json (500× add_shape, the first thing people try, takes tens of seconds)
library  plotly.express.scatter(color=category, hover_data=...) over the same markers + rooms trace
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.common import Row, best_of, ms, ratio, synthetic_floor
from core.floorplan import FloorPlan, _rings_xy

TZ = "Europe/London"
NOW = pd.Timestamp("2026-11-21T10:00:00Z")
CATS = ["staff:nurse", "staff:doctor", "staff:hca", "staff:porter", "patient", "device:infusion_pump",
        "device:monitor", "device:wheelchair", "device:mobile_bed"]


def markers(plan: FloorPlan, n: int, seed: int = 6) -> pd.DataFrame:
    """Snapshot-shaped markers (as core.snapshot builds them) scattered over the plan's rooms."""
    rng = np.random.default_rng(seed)
    rooms = plan.rooms
    pick = rng.integers(0, len(rooms), n)
    c = np.array([(g.centroid.x, g.centroid.y) for g in rooms["geometry"]])
    beds = plan.beds["id"].to_numpy(dtype=object)
    age = rng.exponential(8, n)
    return pd.DataFrame({
        "tag_id": [f"E280{k:020X}" for k in range(n)], "label": [f"Person {k:05d}" for k in range(n)],
        "category": rng.choice(CATS, n, p=[.2, .08, .07, .02, .13, .2, .15, .08, .07]),
        "room_name": rooms["name"].to_numpy()[pick],
        "bed_id": np.where(rng.random(n) < 0.4, beds[rng.integers(0, len(beds), n)], None),
        "x_m": c[pick, 0] + rng.uniform(-2.5, 2.5, n), "y_m": c[pick, 1] + rng.uniform(-1.8, 1.8, n),
        "since": NOW - pd.to_timedelta(rng.integers(0, 7200, n), unit="s"), "age_s": age,
        "state": np.where(age > 30, "stale", "present")})


def ours(base, m):
    import plotly.graph_objects as go
    from ui.figures import add_markers
    return add_markers(go.Figure(base), m, TZ).to_json()


def naive(plan, m):
    import plotly.graph_objects as go
    from ui.figures import style_for
    fig = go.Figure()
    for g in plan.rooms["geometry"]:
        xs, ys = _rings_xy(np.array([g]))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", showlegend=False))
    for cat, grp in m.groupby("category"):
        fig.add_trace(go.Scatter(x=grp["x_m"].tolist(), y=grp["y_m"].tolist(), mode="markers", name=cat,
                                 marker=dict(color=[style_for(cat)[0]] * len(grp)),
                                 text=(grp["label"] + "<br>" + grp["room_name"]).tolist()))
    return fig.to_json()


def library(plan, m):
    import plotly.express as px
    fig = px.scatter(m, x="x_m", y="y_m", color="category", hover_data=["label", "room_name", "bed_id", "since"])
    xs, ys = plan.outline_xy(["room"])
    fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", hoverinfo="skip", showlegend=False)
    return fig.to_json()


def run(n_markers: int = 10_000, cols: int = 25, rows: int = 20, repeat: int = 7) -> list[Row]:
    from ui.figures import base_figure
    plan = FloorPlan.from_geojson(synthetic_floor(cols, rows), floor_id="bench")
    m = markers(plan, n_markers)
    base_s, base = best_of(lambda: base_figure(plan), repeat=1)
    ours(base, m)                                                  # warm plotly's validators
    ours_s, js = best_of(lambda: ours(base, m), repeat=repeat)
    naive_s, _ = best_of(lambda: naive(plan, m), repeat=1)
    lib_s, _ = best_of(lambda: library(plan, m), repeat=2)
    kb = len(js.encode()) / 1024
    return [Row(f"floor-map figure: {n_markers:,} markers + {len(plan.rooms)} rooms, built + to_json",
                f"{ms(ours_s)}, {kb:.0f} KB", f"{ms(naive_s)} (trace per room, SVG)", f"{ms(lib_s)} (plotly.express)",
                f"{ratio(naive_s, ours_s)} naive, {ratio(lib_s, ours_s)} px",
                "≤ 20 ms, ≤ 300 KB (issue 2: ≤ 50 ms)", ours_s <= 0.020 and kb <= 300,
                [f"static layer (rooms, beds, labels) built once per floor: {ms(base_s)}"])]


if __name__ == "__main__":
    from bench.common import format_table
    rows = run()
    print(format_table(rows))
    for r in rows:
        print("\n".join("  " + n for n in r.notes))
