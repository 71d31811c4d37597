"""Who & what is where: a filterable table, search, and the nearest available device from a room."""
import pandas as pd
import streamlit as st

from core.search import find, nearest_available
from core.snapshot import age_text
from ui import auth, render, state

auth.require_page("where")

site = state.site()
st.title("Who & what is where")
render.feed_banner()
snap = state.floor_snapshot(None, show_identity=auth.can("see_patient_identity"))
m = snap.markers

c1, c2, c3, c4 = st.columns(4)
kind = c1.multiselect("Kind", ["staff", "patient", "device"], default=[])
subtypes = sorted(m.loc[m["kind"].isin(kind or ["staff", "patient", "device"]), "subtype"].dropna().unique())
sub = c2.multiselect("Role / type", subtypes, default=[])
ward = c3.multiselect("Ward", site.wards["ward_id"].tolist(), format_func=lambda w: site.wards.set_index("ward_id").at[w, "name"])
rooms = site.rooms[site.rooms["ward_id"].isin(ward)] if ward else site.rooms
room = c4.multiselect("Room", rooms["room_id"].tolist(), format_func=lambda r: f"{r} · {site.rooms.set_index('room_id').at[r, 'name']}")
query = st.text_input("Search by name or tag id", placeholder="e.g. 'pump', 'Grace', 'E280…'")

view = find(m, query)
if kind:
    view = view[view["kind"].isin(kind)]
if sub:
    view = view[view["subtype"].isin(sub)]
if ward:
    view = view[view["ward_id"].isin(ward) | view["room_id"].fillna("").str[:2].isin(ward)]
if room:
    view = view[view["room_id"].isin(room)]

render.updated(snap.taken_at, f" · {len(view)} of {len(m)} tags")
table = pd.DataFrame({
    "name": view["label"], "kind": view["kind"], "role / type": view["subtype"].fillna("").str.replace("_", " "),
    "state": view["state"].str.title(),
    "room": view["room_name"].where(view["state"] != "unknown", "—"),
    "bed": view["bed_id"].where(view["state"] != "unknown").fillna("—"),
    "since": view["since"].dt.tz_convert(site.tz).dt.strftime("%H:%M:%S"),
    "last seen": view["age_s"].map(age_text), "tag id": view["tag_id"]})
st.dataframe(table, hide_index=True, width="stretch", height=420)

st.subheader("Nearest available device")
d1, d2 = st.columns(2)
dtypes = sorted(m.loc[m["kind"] == "device", "subtype"].dropna().unique()) or ["infusion_pump"]
dtype = d1.selectbox("Device type", dtypes, format_func=lambda t: t.replace("_", " "))
all_rooms = site.rooms[~site.rooms["room_type"].isin(["corridor", "lift_lobby"])]
from_room = d2.selectbox("From room", all_rooms["room_id"].tolist(),
                         format_func=lambda r: f"{r} · {site.rooms.set_index('room_id').at[r, 'name']}")
near, method = nearest_available(site, m, dtype, from_room)
if near.empty:
    st.warning(f"No available {dtype.replace('_', ' ')} is currently seen anywhere. Check equipment stores by hand.")
else:
    st.caption(f"Distance is {method}. Only devices marked available and seen in the last "
               f"{state.settings().stale_after_s:.0f} s are listed.")
    st.dataframe(pd.DataFrame({"device": near["label"], "room": near["room_name"], "distance (m)": near["distance_m"],
                               "last seen": near["age_s"].map(age_text)}), hide_index=True, width="stretch")
