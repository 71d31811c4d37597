"""Wardsight: `streamlit run app.py`. Page config, navigation and the shared feed."""
import streamlit as st

from ui import state

st.set_page_config(page_title="Wardsight", page_icon="🏥", layout="wide")

state.repo()     # create the schema and load the site on first start
state.feed()     # the simulated hospital feed: once per server process

PAGES = {
    "Live": [
        st.Page("pages/ward_map.py", title="Live floor map", icon=":material/map:", default=True),
        st.Page("pages/where.py", title="Who & what is where", icon=":material/search:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
    ],
    "System": [
        st.Page("pages/feed_status.py", title="Feed status", icon=":material/sensors:"),
        st.Page("pages/floor_plans.py", title="Floor plans", icon=":material/layers:"),
    ],
}
st.navigation(PAGES).run()

from ui import render  # noqa: E402

render.footer()
