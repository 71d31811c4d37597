"""Plotly figure builders. The floor's static layer (rooms, beds, labels) is built once per floor;
each refresh adds only the marker traces: one Scattergl per legend category with float32 arrays
(hundreds of add_shape calls are quadratic; per-marker colour strings are slow)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import shapely

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
    """Rooms (filled per room type), beds, labels and any walls/doors of a floor plan.

    Coordinates are float32 numpy arrays: plotly sends them as base64 typed arrays (5 bytes a number
    instead of ~18 in a JSON list) and copying the figure on every refresh copies buffers, not lists."""
    fig = go.Figure()
    rooms = plan.rooms
    rtype = rooms["room_type"] if room_types is None else rooms["id"].map(room_types)
    rtype = rtype.fillna(rooms["type"]).fillna("room")
    for t, grp in rooms.groupby(rtype, sort=True):
        xs, ys = _f32(*_rings_xy(grp["geometry"].to_numpy()))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=ROOM_FILL.get(t, "#eef5fb"),
                                 line=dict(color="#8a8a8a", width=1), hoverinfo="skip", showlegend=False, name=str(t)))
    extra = plan.features[plan.features["type"].isin(draw_types)]
    if len(extra):
        xs, ys = _f32(*_rings_xy(extra["geometry"].to_numpy()))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#b0b0b0", width=0.7),
                                 hoverinfo="skip", showlegend=False, name="structure"))
    bx, by = _f32(*plan.outline_xy(["bed"]))
    if bx.size:
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", fill="toself", fillcolor="rgba(255,255,255,0.9)",
                                 line=dict(color="#6b8fb3", width=1), hoverinfo="skip", showlegend=False, name="beds"))
    named = rooms[rooms["name"].notna()]
    if len(named):
        geoms = named["geometry"].to_numpy()
        big = shapely.area(geoms) > 6
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[big]))
        lx, ly = _f32(pts[:, 0], pts[:, 1])
        fig.add_trace(go.Scatter(x=lx, y=ly, text=_u(SHORT_LABEL.get(str(n), str(n)) for n in named["name"].to_numpy()[big]), mode="text",
                                 textfont=dict(size=11, color="#555"), hoverinfo="skip", showlegend=False,
                                 name="room labels"))
    beds = plan.beds
    if len(beds):
        c = shapely.get_coordinates(shapely.centroid(beds["geometry"].to_numpy()))
        cx, cy = _f32(c[:, 0], c[:, 1])
        fig.add_trace(go.Scatter(x=cx, y=cy, text=_u(_bed_label(b) for b in beds["id"]),
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
    rooms = site.floors[floor_id].rooms
    names = site.wards.set_index("ward_id")["name"]
    for ward_id, grp in rooms[rooms["ward_id"].notna()].groupby("ward_id"):
        x0, _, x1, y1 = shapely.total_bounds(grp["geometry"].to_numpy())
        fig.add_annotation(x=x0, y=y1 + 0.4, text=f"<b>{names.get(ward_id, ward_id)}</b>", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=14, color="#333"))
    return fig


def _f32(*arrays) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float32) for a in arrays)


def _u(strings) -> np.ndarray:
    """Texts as a numpy unicode array: plotly copies and serialises it in one C call, where a list
    (or an object array) is deep-copied and cleaned string by string on every refresh."""
    return np.array(list(strings), dtype=str)


def _bed_label(bed_id) -> str:
    b = str(bed_id)
    return b.split("-")[-2] + "-" + b.split("-")[-1] if b.count("-") >= 2 else b


def add_markers(fig: go.Figure, markers: pd.DataFrame, tz) -> go.Figure:
    """One Scattergl trace per legend category; Stale markers drawn faded.

    Hover: the marker's name, its category (constant per trace, so it lives in the trace's
    hovertemplate instead of being repeated in every marker's text), then room, bed, since and last
    seen. Texts are built column-wise; positions and opacities are float32 typed arrays."""
    if markers.empty:
        return fig
    n = len(markers)
    labels = markers["label"].astype(str).to_numpy(dtype=object).astype(str)
    since = markers["since"].dt.tz_convert(tz)
    clock = [f"{h:02d}:{m:02d}:{s_:02d}" for h, m, s_ in
             zip(since.dt.hour.tolist(), since.dt.minute.tolist(), since.dt.second.tolist())]
    room = markers["room_name"].to_numpy(dtype=object)
    bed = markers["bed_id"].to_numpy(dtype=object)
    state = markers["state"].to_numpy(dtype=object)
    seen = _age_texts(markers["age_s"].to_numpy(dtype=float))
    room = np.where(pd.isna(room), "—", room).tolist()
    bed = ["" if b is None or b != b else f" · bed {b}" for b in bed.tolist()]
    stale = np.where(state == "stale", " (STALE)", "").tolist()
    # the words and line breaks between the fields live in the per-trace template (a "<br>" costs
    # 14 bytes of JSON as plotly escapes it); fields travel as 1-D string arrays (text, hovertext,
    # customdata: every per-point attribute is a template variable), which plotly serialises whole
    where = _u(r + b for r, b in zip(room, bed))
    when = _u(f"{c}<br>last seen {a}{st}" for c, a, st in zip(clock, seen, stale))
    x = markers["x_m"].to_numpy(dtype=np.float32)
    y = markers["y_m"].to_numpy(dtype=np.float32)
    faded = state == "stale"
    codes, cats = pd.factorize(markers["category"].to_numpy(dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(len(cats) + 1))
    traces = []
    for k, cat in enumerate(cats):
        idx = order[cuts[k]:cuts[k + 1]]
        colour, symbol, label = style_for(cat)
        opacity = np.where(faded[idx], 0.3, 1.0).astype(np.float32) if faded[idx].any() else 1.0
        # built from known-good values: plotly's validators would copy every array once more
        traces.append(go.Scattergl(
            x=x[idx], y=y[idx], mode="markers", name=label, legendgroup=cat,
            marker=dict(color=colour, symbol=symbol, size=12 if cat == "patient" else 11, opacity=opacity,
                        line=dict(width=1, color="white")),
            text=labels[idx], hovertext=when[idx],
            hovertemplate=f"<b>%{{text}}</b><br>{label}<br>%{{customdata}}<br>here since %{{hovertext}}<extra></extra>",
            _validate=False))
    fig.add_traces(traces)
    # set after adding: add_traces deep-copies an object array (customdata always is one) string
    # by string, the property setter copies it in one C call
    for tr, k in zip(fig.data[-len(cats):], range(len(cats))):
        tr.customdata = where[order[cuts[k]:cuts[k + 1]]]
    return fig


def _age_texts(age_s: np.ndarray) -> list[str]:
    """`core.snapshot.age_text` for a whole column (same words, same rounding)."""
    return [age_text(a) if not (5 <= a < 90) else f"{int(a)} s ago" for a in age_s.tolist()]
