"""Waste disposal: recent waste events on the floor map, every bin with its fill level and age against
the storage limit of its category, and the open waste alarms (with who last handled the waste)."""
from datetime import timedelta

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.alarms import service
from ui import alarms_ui as ui
from ui import auth, render, state
from ui.figures import base_figure

auth.require_page("waste")
site, cfg = state.site(), state.settings()
floors = sorted(site.floors, key=lambda f: site.levels[f])

st.title("Waste disposal")
render.feed_banner()
c1, c2 = st.columns([1, 1])
floor_id = c1.selectbox("Floor", floors, format_func=lambda f: site.floors[f].name, key="waste_floor")
hours = c2.select_slider("Events in the last", [1, 3, 6, 12, 24], value=6, format_func=lambda h: f"{h} h",
                         key="waste_hours")
EVENT_STYLE = {"disposed": ("#009E73", "circle"), "dropped": ("#B00020", "x"), "removed": ("#7f7f7f", "circle-open"),
               "collected": ("#332288", "square-open"), "moved": ("#E69F00", "triangle-up")}


@st.cache_resource(max_entries=4)
def _base(floor: str) -> go.Figure:
    return base_figure(site.floors[floor], site.rooms.set_index("room_id")["room_type"])


def waste_map(bins, events) -> go.Figure:
    fig = go.Figure(_base(floor_id))
    b = bins[bins["floor_id"] == floor_id]
    fill = b["fill_pct"].fillna(0).to_numpy()
    fig.add_trace(go.Scatter(
        x=b["x_m"], y=b["y_m"], mode="markers", name="bin (size = fill)",
        marker=dict(size=10 + fill / 6, symbol="square", color=np.where(fill >= 75, "#B00020", "#56B4E9"),
                    line=dict(width=1, color="black")),
        hovertext=b["name"] + "<br>" + b["fill_pct"].round().astype("Int64").astype(str) + " % full · open "
        + b["age_h"].round(1).astype(str) + " h (limit " + b["limit_h"].round().astype(str) + " h)", hoverinfo="text"))
    e = events[events["floor_id"] == floor_id]
    for ev, grp in e.groupby("event"):
        colour, symbol = EVENT_STYLE.get(ev, ("#444", "circle"))
        jitter = np.random.default_rng(len(grp)).normal(0, 0.25, (len(grp), 2))
        fig.add_trace(go.Scatter(
            x=grp["x_m"] + jitter[:, 0], y=grp["y_m"] + jitter[:, 1], mode="markers", name=f"{ev}",
            marker=dict(size=9, symbol=symbol, color=colour),
            hovertext=grp["category"].astype(str) + " item " + grp["item_id"].astype(str) + " " + ev + " at "
            + grp["ts"].dt.tz_convert(site.tz).dt.strftime("%H:%M") + "<br>handled by "
            + grp["handler"].map(lambda h: ui.staff_name(h, "unknown")).astype(str), hoverinfo="text"))
    x0, y0, x1, y1 = site.floors[floor_id].bounds
    fig.update_layout(height=int(min(620, max(320, 1300 * (y1 - y0 + 2) / (x1 - x0 + 2) + 120))))
    return fig


@st.fragment(run_every=max(cfg.refresh_s, 5.0))
def waste() -> None:
    now = state.now()
    render.updated(now)
    bins = service.bin_status(state.repo(), ui.clinical(), now)
    events = service.waste_events_since(state.repo(), now - timedelta(hours=hours))
    st.plotly_chart(waste_map(bins, events), width="stretch", config={"displaylogo": False, "scrollZoom": True},
                    key="waste_map")
    alarms = service.inbox(state.repo())
    alarms = alarms[alarms["kind"].str.startswith("waste.")]
    for _, a in alarms.iterrows():
        st.markdown(f"{ui.badge_html(a['priority'])} **{ui.kind_text(a['kind'])}** · {ui.place_text(a)} — "
                    f"{a['message']}", unsafe_allow_html=True)
    left, right = st.columns([3, 2])
    b = bins[bins["floor_id"] == floor_id].assign(
        status=lambda d: np.select([d["fill_pct"] >= 75, d["age_h"] > d["limit_h"]], ["⚠️ 3/4 full: close & collect",
                                                                                     "⏰ beyond storage limit"], "ok"))
    left.dataframe(b[["name", "accepts", "fill_pct", "age_h", "limit_h", "items", "status"]], hide_index=True,
                   width="stretch",
                   column_config={"fill_pct": st.column_config.ProgressColumn("fill", min_value=0, max_value=100, format="%.0f %%"),
                                  "age_h": st.column_config.NumberColumn("open for (h)", format="%.1f"),
                                  "limit_h": st.column_config.NumberColumn("limit (h)", format="%.0f"),
                                  "accepts": "accepts (WHO categories)"})
    recent = events.sort_values("ts", ascending=False).head(15).assign(
        when=lambda d: d["ts"].dt.tz_convert(site.tz).dt.strftime("%H:%M"),
        handled_by=lambda d: d["handler"].map(lambda h: ui.staff_name(h, "unknown (no trail)")))
    right.dataframe(recent[["when", "event", "category", "item_id", "bin_id", "room_id", "handled_by"]],
                    hide_index=True, width="stretch")


waste()
