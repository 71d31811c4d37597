"""Operations and contact-tracing pages: cached data loading, plotly figures, audited CSV export.

Caching: the store + demo history → frames → daily rollup is built once per minute per process
(`load`), the period × ward tables once per (period, wards, minute) (`tables`), so changing a
selector re-renders from small pre-aggregated tables instead of scanning 90 days again.
"""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import ops_data
from core.ops_history import bin_limits_h, demo_history
from core.operations import RESPONSE_BUCKETS_S
from ui import auth, state

HORIZON_DAYS = 90
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STATUS_COLOURS = {"in_use": "#0072B2", "idle": "#009E73", "cleaning": "#E69F00"}
SHIFT_COLOURS = {"day": "#E69F00", "night": "#0072B2"}
KIND_LABELS = {"vitals.news2": "NEWS2", "vitals.red_score": "NEWS2 red score", "vitals.obs_overdue": "Obs overdue",
               "vitals.sensor_silent": "Monitor silent", "vitals.glucose": "Glucose", "help.request": "Help request",
               "storage.excursion": "Storage excursion", "storage.sensor_silent": "Storage logger silent",
               "storage.drug_misplaced": "Drug misplaced", "waste.wrong_bin": "Wrong bin",
               "waste.wrong_place": "Waste wrong place", "waste.overdue": "Waste overdue",
               "tag.low_battery": "Tag battery", "tag.silent": "Tag silent", "location.geofence": "Geofence",
               "location.duress": "Duress", "security.cloned_tag": "Cloned tag"}


# ----------------------------------------------------------------------------------- loading

def now_minute() -> pd.Timestamp:
    return pd.Timestamp(state.now()).floor("min")


def horizon(now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    today = now.tz_convert(state.site().timezone).date()
    return ops_data.day_window(today - timedelta(days=HORIZON_DAYS - 1), today, state.site().timezone)


@st.cache_data(max_entries=4, show_spinner="Reading the store and building the daily rollup…")
def load(db_url: str, minute: pd.Timestamp, demo: bool):
    """(frames, rollup) for the 90-day horizon ending today: live store (+ demo history before the
    store's first record when `demo`)."""
    site, engine = state.site(), state.repo().engine
    h_start, h_end = horizon(minute)
    frames = ops_data.live_frames(engine, site, h_start, minute)
    if demo:
        first = ops_data.first_record(engine)
        demo_end = minute if first is None else min(first.floor("min"), minute)
        days = max(1, math.ceil((demo_end - h_start) / pd.Timedelta(days=1)))
        frames = ops_data.combine(demo_history(site, demo_end, days=days, seed=state.settings().sim_seed), frames)
    return frames, ops_data.build_rollup(frames, h_start, h_end, site.timezone)


@st.cache_data(max_entries=64, show_spinner=False)
def tables(db_url: str, minute: pd.Timestamp, demo: bool, first_day: date, last_day: date,
           wards: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    frames, rollup = load(db_url, minute, demo)
    tz = state.site().timezone
    start, end = ops_data.day_window(first_day, last_day, tz)
    return ops_data.page_tables(ops_data.for_wards(frames, wards), ops_data.rollup_for_wards(rollup, wards),
                                start, end, minute, tz, bin_limits_h())


def notes(db_url: str, minute: pd.Timestamp, demo: bool) -> tuple[str, ...]:
    return load(db_url, minute, demo)[0].notes


# ------------------------------------------------------------------------------------ labels

def bucket_label(upper_s: float) -> str:
    if not np.isfinite(upper_s):
        return "> 24 h"
    if upper_s < 60:
        return f"≤ {upper_s:.0f} s"
    if upper_s < 3600:
        return f"≤ {upper_s / 60:.0f} min"
    return f"≤ {upper_s / 3600:.0f} h"


BUCKET_ORDER = [bucket_label(b) for b in RESPONSE_BUCKETS_S]


def duration_text(seconds) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def ward_names() -> dict[str, str]:
    return state.site().wards.set_index("ward_id")["name"].to_dict()


def _layout(fig: go.Figure, title: str, height: int = 340, **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=60, b=10), legend=dict(orientation="h", y=-0.15, x=0),
                      plot_bgcolor="white", **kw)
    fig.update_yaxes(gridcolor="#e5e5e5")
    fig.update_traces(cliponaxis=False, selector=dict(type="bar"))    # value labels above the top bar
    return fig


# ----------------------------------------------------------------------------------- figures

def response_figure(hist: pd.DataFrame, metric: str, split: str, title: str) -> go.Figure:
    """Share of alarms per response-time bucket, one bar series per value of `split`
    (kind / ward_id / shift): groups of different size stay comparable."""
    h = hist[hist["metric"] == metric]
    fig = go.Figure()
    groups = h.groupby(split)
    for i, (key, g) in enumerate(groups):
        per = g.groupby("bucket_s")["count"].sum()
        share = per / per.sum() * 100
        labels = [bucket_label(b) for b in share.index]
        name = kind_label(key) if split == "kind" else ward_names().get(key, key) if split == "ward_id" else key
        colour = SHIFT_COLOURS.get(key) if split == "shift" else PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Bar(x=labels, y=share.to_numpy(), name=f"{name} (n={int(per.sum()):,})",
                             marker_color=colour, hovertemplate="%{x}: %{y:.1f} %<extra>" + str(name) + "</extra>"))
    fig.update_xaxes(categoryorder="array", categoryarray=BUCKET_ORDER)
    fig.update_yaxes(title="% of alarms", ticksuffix=" %")
    return _layout(fig, title, barmode="group")


def escalation_figure(esc: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for i, (ward, g) in enumerate(esc.groupby("ward_id")):
        fig.add_trace(go.Bar(x=g["kind"].map(kind_label), y=g["escalation_rate"] * 100,
                             name=ward_names().get(ward, ward), marker_color=PALETTE[i % len(PALETTE)],
                             customdata=np.c_[g["escalated"], g["alarms"]],
                             hovertemplate="%{x}: %{y:.1f} % (%{customdata[0]} of %{customdata[1]})<extra></extra>"))
    fig.update_yaxes(title="escalated", ticksuffix=" %")
    return _layout(fig, "Escalation rate by alarm kind", barmode="group")


def load_figure(load: pd.DataFrame) -> go.Figure:
    names = load["ward_id"].map(lambda w: ward_names().get(w, w))
    fig = go.Figure(go.Bar(x=names, y=load["alarms_per_bed_day"], marker_color=PALETTE[0],
                           text=load["alarms_per_bed_day"].round(2), textposition="outside",
                           customdata=np.c_[load["alarms"], load["beds"]],
                           hovertemplate="%{x}: %{y:.2f} alarms per bed per day<br>%{customdata[0]} alarms, "
                                         "%{customdata[1]} beds<extra></extra>"))
    fig.update_yaxes(title="alarms / bed / day", rangemode="tozero")
    return _layout(fig, "Alarm load per bed per day")


def daily_figure(daily: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    top = daily.groupby("kind")["alarms"].sum().sort_values(ascending=False).index
    for i, kind in enumerate(top):
        g = daily[daily["kind"] == kind]
        fig.add_trace(go.Bar(x=g["day"], y=g["alarms"], name=kind_label(kind), marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_yaxes(title="alarms per day")
    return _layout(fig, "Alarms per day by kind", barmode="stack")


def share_bars(df: pd.DataFrame, x: str, value: str, colour_by: str, colours: dict, title: str,
               pct: bool = True) -> go.Figure:
    fig = go.Figure()
    for key, g in df.groupby(colour_by, sort=False):
        y = g[value] * (100 if pct else 1)
        fig.add_trace(go.Bar(x=g[x], y=y, name=str(key).replace("_", " "), marker_color=colours.get(key),
                             text=y.round(0 if pct else 1).astype("Int64" if pct else "float").astype(str)
                             + (" %" if pct else ""), textposition="inside" if pct else "outside"))
    fig.update_yaxes(ticksuffix=" %" if pct else "", rangemode="tozero")
    return _layout(fig, title, barmode="stack" if pct and colour_by == "status" else "group")


def utilisation_figure(util: pd.DataFrame) -> go.Figure:
    u = util.assign(group=util["ward_id"] + " · " + util["device_type"].str.replace("_", " "))
    fig = go.Figure()
    for status in ("in_use", "idle", "cleaning"):
        g = u[u["status"] == status]
        fig.add_trace(go.Bar(y=g["group"], x=g["share"] * 100, orientation="h", name=status.replace("_", " "),
                             marker_color=STATUS_COLOURS[status],
                             hovertemplate="%{y}: %{x:.0f} %<extra>" + status.replace("_", " ") + "</extra>"))
    fig.update_xaxes(ticksuffix=" %", range=[0, 100], title="share of tracked time")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Device utilisation (in use / idle / cleaning)", height=max(300, 28 * u["group"].nunique() + 120),
                   barmode="stack")


def by_ward_shift_figure(df: pd.DataFrame, value: str, title: str, axis: str, pct: bool) -> go.Figure:
    fig = go.Figure()
    for shift in ("day", "night"):
        g = df[df["shift"] == shift]
        y = g[value] * (100 if pct else 1)
        fig.add_trace(go.Bar(x=g["ward_id"].map(lambda w: ward_names().get(w, w)), y=y, name=f"{shift} shift",
                             marker_color=SHIFT_COLOURS[shift], text=y.round(0 if pct else 1), textposition="outside"))
    fig.update_yaxes(title=axis, ticksuffix=" %" if pct else "", rangemode="tozero",
                     range=[0, 105] if pct else None)
    return _layout(fig, title, barmode="group")


def occupancy_figure(occ: pd.DataFrame) -> go.Figure:
    names = occ["ward_id"].map(lambda w: ward_names().get(w, w))
    y = occ["occupancy"] * 100
    fig = go.Figure(go.Bar(x=names, y=y, marker_color=PALETTE[2], text=y.round(1).astype(str) + " %",
                           textposition="outside"))
    fig.update_yaxes(ticksuffix=" %", range=[0, 110], title="occupied bed time")
    return _layout(fig, "Bed occupancy")


def wrong_bin_figure(waste: pd.DataFrame) -> go.Figure:
    names = waste["ward_id"].map(lambda w: ward_names().get(w, w))
    y = waste["wrong_bin_rate"] * 100
    fig = go.Figure(go.Bar(x=names, y=y, marker_color=PALETTE[3], text=y.round(1).astype(str) + " %",
                           textposition="outside", customdata=np.c_[waste["wrong_bin"], waste["disposals"]],
                           hovertemplate="%{x}: %{y:.1f} % (%{customdata[0]} of %{customdata[1]})<extra></extra>"))
    fig.update_yaxes(ticksuffix=" %", rangemode="tozero", title="disposals in the wrong bin")
    return _layout(fig, "Wrong-bin rate")


def network_figure(nodes: pd.DataFrame, edges: pd.DataFrame, centre: str, labels: dict[str, str]) -> go.Figure:
    """Contact network around `centre`: circular layout by role, edge width ∝ contact time."""
    ids = nodes["person_id"].tolist()
    others = [p for p in ids if p != centre]
    angle = np.linspace(0, 2 * np.pi, len(others), endpoint=False) if others else np.array([])
    pos = {p: (float(np.cos(a)), float(np.sin(a))) for p, a in zip(others, angle)}
    pos[centre] = (0.0, 0.0)
    fig = go.Figure()
    max_s = float(edges["contact_s"].max()) if len(edges) else 1.0
    direct = (edges["person_a"] == centre) | (edges["person_b"] == centre)
    # indirect edges first and thin, direct ones on top: chords of the ring cross the centre
    ordered = pd.concat([edges[~direct], edges[direct]])
    for e in ordered.itertuples(index=False):     # a few dozen edges around one person, not a hot path
        if e.person_a not in pos or e.person_b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[e.person_a], pos[e.person_b]
        is_direct = centre in (e.person_a, e.person_b)
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", showlegend=False, hoverinfo="skip",
                                 line=dict(width=(1.5 + 7 * e.contact_s / max_s) if is_direct
                                           else (0.5 + 2 * e.contact_s / max_s),
                                           color="#0072B2" if is_direct else "#d0d0d0")))
    roles = nodes.set_index("person_id")["role"]
    for i, (role, grp) in enumerate(roles.groupby(roles)):
        xs = [pos[p][0] for p in grp.index if p in pos]
        ys = [pos[p][1] for p in grp.index if p in pos]
        text = [labels.get(p, p) for p in grp.index if p in pos]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", text=text, textposition="top center",
                                 name=role, marker=dict(size=[22 if p == centre else 13 for p in grp.index if p in pos],
                                                        color=PALETTE[i % len(PALETTE)],
                                                        line=dict(width=1, color="white"))))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return _layout(fig, "Contact network (line width = contact time; blue = direct contact)", height=520)


# ------------------------------------------------------------------------------------ export

def export_block(tables: dict[str, pd.DataFrame], *, object_type: str, object_id_prefix: str,
                 detail: dict, key: str, reason: str | None = None) -> None:
    """A table chooser and an "Export CSV" button for roles with the `export` permission; the
    click is audited (ui.auth.record action="export") before the download is offered."""
    if not auth.can("export"):
        st.caption("CSV export needs the export permission (charge nurse, manager, admin).")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Table to export", list(tables), key=f"{key}_table",
                        format_func=lambda n: n.replace("_", " "))
    if c2.button("Export CSV", key=f"{key}_go", icon=":material/download:"):
        df = tables[name]
        auth.record("export", object_type=object_type, object_id=f"{object_id_prefix}{name}", reason=reason,
                    detail={**detail, "table": name, "rows": int(len(df))})
        # keep exactly what was audited: a later selector change must not alter the file
        st.session_state[f"{key}_ready"] = (name, df.to_csv(index=False).encode("utf-8"), len(df))
    ready = st.session_state.get(f"{key}_ready")
    if ready is not None:
        name, data, rows = ready
        st.download_button(f"Download {name.replace('_', ' ')}.csv ({rows:,} rows)", data, file_name=f"{name}.csv",
                           mime="text/csv", key=f"{key}_dl")
        st.caption("Export recorded in the audit log.")


# --------------------------------------------------------------------------- contact tracing

@st.cache_data(max_entries=16, show_spinner="Deriving contacts from presence…")
def colocation(db_url: str, start: pd.Timestamp, end: pd.Timestamp, within_m: float | None) -> pd.DataFrame:
    """Contacts of everyone in (start, end] from our presence data (same room, optionally within
    `within_m` metres at the window's position sample)."""
    from core.proximity import colocation_contacts
    engine = state.repo().engine
    presence = ops_data.people_presence(engine, start, end)
    positions = ops_data.people_positions(engine, state.site().tags, start, end) if within_m else None
    return colocation_contacts(presence, start, end, within_m=within_m, positions=positions)


@st.cache_data(max_entries=4, show_spinner="Reading the contact file…")
def sociopatterns(data: bytes, origin: pd.Timestamp) -> pd.DataFrame:
    """An uploaded or named SocioPatterns file, read with core.proximity.read_sociopatterns."""
    import tempfile
    from core.proximity import read_sociopatterns
    with tempfile.NamedTemporaryFile(suffix=".dat") as f:
        f.write(data)
        f.flush()
        return read_sociopatterns(f.name, origin)


def person_labels(show_patient_identity: bool) -> dict[str, str]:
    """entity_id → label; patients by initials unless the role may see identities."""
    e = state.site().entities
    e = e[e["kind"].isin(["staff", "patient"])]
    name = e["name"].where((e["kind"] == "staff") | show_patient_identity, e["short_name"])
    kind = e["subtype"].where(e["kind"] == "staff", "patient").str.replace("_", " ")
    return dict(zip(e["entity_id"], name + " · " + kind + " (" + e["entity_id"] + ")"))
