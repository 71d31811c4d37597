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


# minimum necessary (45 CFR 164.502(b)): full patient names only for roles allowed to see them; asked
# once per page run, not per map refresh (a refresh is not activity and must not extend the session)
show_names = auth.can("see_patient_identity")


@st.fragment(run_every=cfg.refresh_s)
def live_map() -> None:
    snap = state.floor_snapshot(floor_id, show_identity=show_names)
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
    # ward names of wards outside the view would be cut at the edge: keep only those in view
    fig.layout.annotations = [a for a in fig.layout.annotations if x0 - 1 <= a.x <= x1]
    fig.update_yaxes(range=[y0 - 1, y1 + 3])
    fig.update_layout(height=int(min(760, max(340, 1250 * (y1 - y0 + 4) / (x1 - x0 + 2) + 90))))
    st.plotly_chart(fig, width="stretch", config={"displaylogo": False, "scrollZoom": True},
                    key="floor_map")
    paused_note(snap.paused, ward)


def paused_note(paused, ward: str) -> None:
    """Opted-out patients are never drawn; say so at their bed instead of leaving a silent gap."""
    if not ward.startswith("All"):
        paused = paused[paused["ward_id"] == ward]
    who = paused["label"] if show_names else paused["short_name"]
    for bed, name in zip(paused["bed_id"], who):
        st.caption(f":material/location_off: Bed {bed} · {name}: tracking paused at the patient's request")


live_map()

if auth.can("record_optout"):
    with st.expander("Patient tracking opt-out", expanded="optout_done" in st.session_state):
        from core.security import privacy
        if "optout_done" in st.session_state:
            st.success(st.session_state.pop("optout_done"))
        here = site.patients[site.patients["bed_id"].map(site.beds.set_index("bed_id")["floor_id"]) == floor_id]
        paused = privacy.active_optouts(state.repo().engine, here["patient_id"]).set_index("patient_id")
        names = dict(zip(here["patient_id"], here["bed_id"] + " · " + here["given"] + " " + here["family"]))
        pick = st.selectbox("Patient", list(names), key="optout_patient", format_func=names.get)
        paused_ids = set(paused.index)
        if pick in paused_ids:
            st.caption(f"Tracking paused since {state.local(paused.at[pick, 'since']):%d %b %H:%M}, "
                       f"recorded by {paused.at[pick, 'recorded_by']}.")
        why = st.text_input("Note (optional)", key="optout_note", placeholder="e.g. patient asked at admission")
        user = auth.current_user()
        if pick not in paused_ids and st.button("Pause tracking for this patient", key="optout_record"):
            privacy.record_optout(state.repo().engine, pick, user.username, state.now(), why or None, role=user.role)
            st.session_state["optout_done"] = ("Recorded: this patient's tag is no longer tracked or stored. "
                                               "The audit log shows who recorded it and when.")
            st.rerun()
        elif pick in paused_ids and st.button("Resume tracking (patient agreed)", key="optout_withdraw"):
            privacy.withdraw_optout(state.repo().engine, pick, user.username, state.now(), why or None, role=user.role)
            st.session_state["optout_done"] = "Tracking resumes with the next reads of this patient's tag."
            st.rerun()
