"""Live floor map: who and what is where, refreshed every few seconds without reloading the page."""
import streamlit as st

from ui import auth, render, state
from ui.figures import add_markers, add_ward_labels, base_figure

auth.require_page("ward_map")

site = state.site()
cfg = state.settings()
state.feed()

st.title("Live floor map")
floors = sorted(site.floors, key=lambda f: site.levels[f])
c1, c2, c3 = st.columns([2, 3, 3])
floor_id = c1.selectbox("Floor", floors, format_func=lambda f: site.floors[f].name, key="map_floor")
wards_here = site.wards[site.wards["floor_id"] == floor_id]
ward = c2.selectbox("Ward", wards_here["ward_id"].tolist() + ["All wards on this floor"],
                    format_func=lambda w: w if w.startswith("All") else wards_here.set_index("ward_id").at[w, "name"])
kinds = c3.multiselect("Show", ["staff", "patient", "device"], default=["staff", "patient", "device"])
render.feed_banner()


@st.cache_resource(max_entries=16)
def _base(floor_id: str):
    plan = site.floors[floor_id]
    fig = base_figure(plan, site.rooms.set_index("room_id")["room_type"], height_px=None)
    return add_ward_labels(fig, site, floor_id)


def _extent(floor_id: str, ward: str) -> tuple[float, float, float, float]:
    if ward.startswith("All"):
        return site.floors[floor_id].bounds
    rooms = site.floors[floor_id].rooms
    import shapely
    return tuple(shapely.total_bounds(rooms[rooms["ward_id"] == ward]["geometry"].to_numpy()))


@st.fragment(run_every=cfg.refresh_s)
def live_map() -> None:
    snap = state.floor_snapshot(floor_id)
    m = snap.on_map()
    m = m[m["floor_id"] == floor_id]
    if not ward.startswith("All"):
        m = m[m["ward_id"].eq(ward) | m["room_id"].str.startswith(ward + "-")]
    m = m[m["kind"].isin(kinds)]
    counts = snap.markers[snap.markers["floor_id"] == floor_id]["state"].value_counts()
    render.updated(snap.taken_at, f" · {counts.get('present', 0)} present · {counts.get('stale', 0)} stale (faded) · "
                                  f"{counts.get('unknown', 0)} unknown (not drawn)")
    import plotly.graph_objects as go
    fig = add_markers(go.Figure(_base(floor_id)), m, site.tz)
    x0, y0, x1, y1 = _extent(floor_id, ward)
    fig.update_xaxes(range=[x0 - 1, x1 + 1])
    fig.update_yaxes(range=[y0 - 1, y1 + 3])
    fig.update_layout(height=int(min(760, max(340, 1250 * (y1 - y0 + 4) / (x1 - x0 + 2) + 90))))
    st.plotly_chart(fig, width="stretch", config={"displaylogo": False, "scrollZoom": True},
                    key="floor_map")


live_map()
