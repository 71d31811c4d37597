"""Floor plans: every level of the site, and a check of an outside plan (GeoJSON in metres or CRS84,
or a WRLD indoor map) before it goes live."""
import os
from pathlib import Path

import streamlit as st

from core.errors import FloorPlanError
from core.floorplan import Building, FloorPlan
from ui import auth, state
from ui.figures import base_figure

auth.require_page("floor_plans")

site = state.site()
st.title("Floor plans")
st.caption("Rooms, beds and zones as Wardsight locates them. Use this to check an imported plan.")

default = os.environ.get("WARDSIGHT_EXTERNAL_DIR", "")
default = str(Path(default) / "wrld_westport_house_indoor" / "westport-house" / "main.json") if default else ""
source = st.radio("Plan", ["This site", "Load a plan from a file path"], horizontal=True)
if source == "This site":
    floors = {f: site.floors[f] for f in sorted(site.floors, key=lambda f: site.levels[f])}
else:
    path = st.text_input("Path to a GeoJSON FeatureCollection or a WRLD main.json", value=default)
    floors = {}
    if path:
        try:
            if path.endswith("main.json"):
                floors = Building.from_wrld(path).floors
            else:
                plan = FloorPlan.from_geojson(path)
                floors = {plan.floor_id: plan}
        except FloorPlanError as exc:
            st.error(f"Cannot load that plan: {exc}")
for fid, plan in floors.items():
    x0, y0, x1, y1 = plan.bounds
    st.markdown(f"**{plan.name}** · {len(plan.rooms)} rooms, {len(plan.beds)} beds, {len(plan.zones)} zones, "
                f"{x1 - x0:.0f} × {y1 - y0:.0f} m" + (" · projected from CRS84" if plan.origin_lonlat else ""))
    fig = base_figure(plan, site.rooms.set_index("room_id")["room_type"] if source == "This site" else None)
    fig.update_layout(height=int(min(700, max(260, 1100 * (y1 - y0 + 2) / (x1 - x0 + 2)))))
    st.plotly_chart(fig, width="stretch", key=f"plan_{fid}")
