"""History: where was a tag at time T, and its trail over the last hours."""
from datetime import datetime, time, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.history import trail, where_at
from ui import auth, state
from ui.figures import base_figure

auth.require_page("history")

site = state.site()
repo = state.repo()
st.title("History")
ents = site.entities.sort_values(["kind", "name"])
if not auth.can("see_staff_trails"):
    # individual staff trails are withheld by default (staff privacy); aggregates are on Operations
    ents = ents[ents["kind"] != "staff"]
    st.caption("Staff movement history is not shown: it is kept for contact tracing and aggregates only.")
identity = auth.can("see_patient_identity")
shown = ents["name"].where((ents["kind"] != "patient") | identity, ents["short_name"])
label = pd.Series([f"{n} · {k} ({t})" for n, k, t in zip(shown, ents["kind"], ents["subtype"])],
                  index=ents["entity_id"].to_numpy())
c1, c2, c3 = st.columns([3, 2, 2])
eid = c1.selectbox("Person or device", ents["entity_id"].tolist(), format_func=lambda e: label[e])
now_local = state.local(state.now())
day = c2.date_input("Date", now_local.date())
at_t = c3.time_input("Time", now_local.time().replace(second=59, microsecond=0), step=60)
at = datetime.combine(day, at_t, tzinfo=site.tz)
room_names = site.rooms.set_index("room_id")["name"].to_dict()
place = where_at(repo, eid, at)
st.markdown(f"**At {at:%H:%M} on {at:%d %b}:** {place.describe(room_names)}")

hours = st.slider("Trail over the last … hours (before the time above)", 1, 12, 2)
tr = trail(repo, eid, at - timedelta(hours=hours), at)
if tr.empty:
    st.info("No stored movements in that period.")
else:
    tr = tr.assign(room=tr["room_id"].map(room_names).fillna("unknown"),
                   local=tr["ts"].dt.tz_convert(site.tz).dt.strftime("%H:%M:%S"))
    floors = [f for f in tr["floor_id"].dropna().unique()]
    for fid in floors:
        seg = tr[tr["floor_id"] == fid]
        fig = go.Figure(base_figure(site.floors[fid], site.rooms.set_index("room_id")["room_type"]))
        fig.add_trace(go.Scatter(x=seg["x_m"], y=seg["y_m"], mode="lines+markers", name="trail",
                                 line=dict(color="#D55E00", width=2), marker=dict(size=7),
                                 hovertext=seg["local"] + " " + seg["room"], hoverinfo="text"))
        fig.update_layout(height=360, title=site.floors[fid].name)
        st.plotly_chart(fig, width="stretch", key=f"trail_{fid}")
    st.dataframe(pd.DataFrame({"from": tr["local"], "room": tr["room"], "bed": tr["bed_id"],
                               "stayed (min)": (tr["duration_s"] / 60).round(1)}), hide_index=True, width="stretch")
