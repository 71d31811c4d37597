"""Wardsight: `streamlit run app.py`. Page config, sign-in gate, role-based navigation, the shared feed."""
import streamlit as st

from core.security import roles
from ui import auth, nav, render, state

st.set_page_config(page_title="Wardsight", page_icon="🏥", layout="wide")
# Streamlit dims elements while a fragment reruns; on a live map that dimming would look exactly like
# our "Stale" fading, so it is switched off: faded means stale data, nothing else.
st.html("<style>[data-stale='true']{opacity:1 !important;transition:none !important}</style>")

state.repo()     # create the schema and load the site on first start
state.feed()     # the simulated hospital feed: once per server process

user = auth.current_user()
role = user.role if user else roles.Role.KIOSK.value
specs = nav.available(roles.pages_for(role))
sections: dict[str, list] = {}
for i, spec in enumerate(specs):
    sections.setdefault(spec.section, []).append(
        st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=(user is not None and i == 0)))
if user is None:
    sections = {"": [st.Page(auth.login_page, title="Sign in", icon=":material/login:", url_path="login",
                             default=True)], **sections}
else:
    with st.sidebar:
        st.markdown(f"**{user.display_name}**  \n{user.role.replace('_', ' ')}")
        if st.button("Sign out", icon=":material/logout:"):
            auth.sign_out()
            st.rerun()
        auth.idle_watch()
st.navigation(sections).run()
render.footer()
