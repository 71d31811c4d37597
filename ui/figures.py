"""Plotly figure builders. The floor's static layer (rooms, beds, labels) is built once per floor;
each refresh adds only the marker traces: one Scattergl per legend category with float32 arrays
(hundreds of add_shape calls are quadratic; per-marker colour strings are slow)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.floorplan import FloorPlan, _rings_xy
from core.snapshot import age_text

# Okabe–Ito colour-blind-safe palette; symbols differ too, so colour is never the only cue.
STYLE = {
    "staff:nurse": ("#0072B2", "circle", "Nurse"),
    "staff:charge_nurse": ("#003f7f", "circle-dot", "Charge nurse"),
    "staff:hca": ("#56B4E9", "circle-open", "Healthcare assistant"),
    "staff:doctor": ("#009E73", "diamond", "Doctor"),
    "staff:porter": ("#E69F00", "triangle-right", "Porter"),
    "staff:cleaner": ("#7f7f7f", "hexagon", "Cleaner"),
    "staff:pharmacist": ("#CC79A7", "pentagon", "Pharmacist"),
    "staff:ward_manager": ("#332288", "star-diamond", "Ward manager"),
    "patient": ("#D55E00", "square", "Patient"),
    "device:infusion_pump": ("#882255", "triangle-up", "Infusion pump"),
    "device:monitor": ("#44AA99", "star", "Monitor"),
    "device:wheelchair": ("#999933", "hourglass", "Wheelchair"),
    "device:mobile_bed": ("#661100", "cross", "Mobile bed"),
}
ROOM_FILL = {"corridor": "#f2f2f2", "bay": "#eef5fb", "single": "#eef5fb", "nurses_station": "#fff6e0",
             "medication": "#f3ecf8", "dirty_utility": "#f6efe6", "equipment_store": "#eef6ee",
             "staff_room": "#f7f7f7", "staff_toilet": "#f7f7f7", "patient_toilet": "#f7f7f7",
             "lift_lobby": "#e8e8e8", "room": "#eef5fb", "bathroom": "#f7f7f7"}


SHORT_LABEL = {"Nurses' station": "Nurses' stn", "Medication room": "Meds", "Equipment store": "Equipment",
               "Dirty utility": "Dirty util.", "Patient bathroom": "Bathroom", "Patient toilet": "WC",
               "Staff toilet": "Staff WC", "Staff room": "Staff rm"}


def style_for(cat: str) -> tuple[str, str, str]:
    return STYLE.get(cat, ("#444444", "circle", cat.split(":")[-1].replace("_", " ").title()))


def base_figure(plan: FloorPlan, room_types: pd.Series | None = None, *, height_px: int | None = None,
                draw_types: tuple[str, ...] = ("wall", "door", "stairs", "elevator", "inaccessible_space")) -> go.Figure:
    """Rooms (filled per room type), beds, labels and any walls/doors of a floor plan."""
    fig = go.Figure()
    rooms = plan.rooms
    rtype = rooms["room_type"] if room_types is None else rooms["id"].map(room_types)
    rtype = rtype.fillna(rooms["type"]).fillna("room")
    for t, grp in rooms.groupby(rtype, sort=True):
        xs, ys = _rings_xy(grp["geometry"].to_numpy())
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=ROOM_FILL.get(t, "#eef5fb"),
                                 line=dict(color="#8a8a8a", width=1), hoverinfo="skip", showlegend=False, name=str(t)))
    extra = plan.features[plan.features["type"].isin(draw_types)]
    if len(extra):
        xs, ys = _rings_xy(extra["geometry"].to_numpy())
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#b0b0b0", width=0.7),
                                 hoverinfo="skip", showlegend=False, name="structure"))
    bx, by = plan.outline_xy(["bed"])
    if bx.size:
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", fill="toself", fillcolor="rgba(255,255,255,0.9)",
                                 line=dict(color="#6b8fb3", width=1), hoverinfo="skip", showlegend=False, name="beds"))
    named = rooms[rooms["name"].notna()]
    if len(named):
        pts = [g.representative_point() for g in named["geometry"]]
        big = np.array([g.area for g in named["geometry"]]) > 6
        fig.add_trace(go.Scatter(x=[p.x for p, b in zip(pts, big) if b], y=[p.y for p, b in zip(pts, big) if b],
                                 text=[SHORT_LABEL.get(str(n), str(n)) for n, b in zip(named["name"], big) if b], mode="text",
                                 textfont=dict(size=11, color="#555"), hoverinfo="skip", showlegend=False,
                                 name="room labels"))
    beds = plan.beds
    if len(beds):
        cx = [g.centroid.x for g in beds["geometry"]]
        cy = [g.centroid.y for g in beds["geometry"]]
        fig.add_trace(go.Scatter(x=cx, y=cy, text=[str(b).split("-")[-2] + "-" + str(b).split("-")[-1] if str(b).count("-") >= 2 else str(b)
                                                   for b in beds["id"]],
                                 mode="text", textfont=dict(size=9, color="#6b8fb3"), hoverinfo="skip",
                                 showlegend=False, name="bed labels"))
    x0, y0, x1, y1 = plan.bounds
    pad = 1.0
    fig.update_xaxes(range=[x0 - pad, x1 + pad], visible=False, constrain="domain")
    fig.update_yaxes(range=[y0 - pad, y1 + pad], visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(margin=dict(l=4, r=4, t=4, b=4), plot_bgcolor="white", paper_bgcolor="white",
                      height=height_px, dragmode="pan", hovermode="closest",
                      legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, font=dict(size=13)))
    return fig


def add_ward_labels(fig: go.Figure, site, floor_id: str) -> go.Figure:
    """Ward names above each ward's rooms."""
    import shapely
    rooms = site.floors[floor_id].rooms
    names = site.wards.set_index("ward_id")["name"]
    for ward_id, grp in rooms[rooms["ward_id"].notna()].groupby("ward_id"):
        x0, _, x1, y1 = shapely.total_bounds(grp["geometry"].to_numpy())
        fig.add_annotation(x=x0, y=y1 + 0.4, text=f"<b>{names.get(ward_id, ward_id)}</b>", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=14, color="#333"))
    return fig


def add_markers(fig: go.Figure, markers: pd.DataFrame, tz) -> go.Figure:
    """One Scattergl trace per legend category; Stale markers drawn faded."""
    if markers.empty:
        return fig
    since_local = markers["since"].dt.tz_convert(tz).dt.strftime("%H:%M:%S")
    seen = markers["age_s"].map(age_text)
    hover = (markers["label"].astype(str) + "<br>" + markers["category"].map(lambda c: style_for(c)[2]) +
             "<br>" + markers["room_name"].fillna("—").astype(str) +
             np.where(markers["bed_id"].notna(), " · bed " + markers["bed_id"].fillna("").astype(str), "") +
             "<br>here since " + since_local + "<br>last seen " + seen +
             np.where(markers["state"] == "stale", " (STALE)", ""))
    for cat, idx in markers.groupby("category", sort=True).groups.items():
        m = markers.loc[idx]
        colour, symbol, label = style_for(cat)
        opacity = np.where(m["state"].to_numpy() == "stale", 0.3, 1.0).astype(np.float32)
        fig.add_trace(go.Scattergl(
            x=m["x_m"].to_numpy(dtype=np.float32), y=m["y_m"].to_numpy(dtype=np.float32), mode="markers",
            name=label, legendgroup=cat,
            marker=dict(color=colour, symbol=symbol, size=12 if cat == "patient" else 11, opacity=opacity,
                        line=dict(width=1, color="white")),
            hovertext=hover.loc[idx].to_numpy(), hoverinfo="text"))
    return fig
