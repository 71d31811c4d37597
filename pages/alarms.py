"""Alarm inbox: every alarm kind of a ward in one list, by priority then age; acknowledge / resolve
where the role allows it (audited), escalation and the nearest responder visible; alarm fatigue
(alarms per bed per day); ask for a porter or a second pair of hands."""
import streamlit as st

from core.alarms import service
from ui import alarms_ui as ui
from ui import auth, render, state

user = auth.require_page("alarms")
site, cfg = state.site(), state.settings()
wards = site.wards.set_index("ward_id")["name"]

st.title("Alarm inbox")
render.feed_banner()
c1, c2, c3 = st.columns([2, 3, 2])
ward = c1.selectbox("Ward", ["ALL", *wards.index], format_func=lambda w: "All wards" if w == "ALL" else wards[w],
                    key="inbox_ward")
families = c2.multiselect("Kinds", list(ui.FAMILY), format_func=lambda f: ui.FAMILY[f][1], key="inbox_families",
                          placeholder="all kinds")
show_ack = c3.toggle("Show acknowledged", value=True, key="inbox_show_ack")
identity = auth.can("see_patient_identity")


@st.fragment(run_every=cfg.refresh_s)
def inbox() -> None:
    now = state.now()
    df = service.inbox(state.repo(), None if ward == "ALL" else ward)
    if families:
        df = df[df["kind"].str.split(".").str[0].isin(families)]
    render.updated(now)
    ui.notice()
    st.markdown(ui.counts_line(df), unsafe_allow_html=True)
    if not show_ack:
        df = df[df["state"] != "acknowledged"]
    if df.empty:
        st.success("No open alarms.")
        return
    for _, a in df.iterrows():
        ui.render_alarm(a, now, user=user, can_act=service.may_act(user.role, a["kind"]), identity=identity)


inbox()

with st.expander("Ask for help: a porter for a transfer, or a second pair of hands", icon="🙋"):
    here = ward if ward != "ALL" else site.wards["ward_id"].iloc[0]
    rooms = site.rooms[site.rooms["ward_id"] == here].set_index("room_id")["name"]
    with st.form("help_request"):
        h1, h2 = st.columns(2)
        need = h1.selectbox("I need", list(service.HELP_ROLES), format_func=service.HELP_ROLES.get)
        room = h2.selectbox("Where", list(rooms.index), format_func=lambda r: f"{rooms[r]} ({r})")
        if st.form_submit_button("Send request", type="primary"):
            try:
                alarm = service.request_help(state.repo(), site, role_needed=need, room_id=room,
                                             requester=user.staff_id or user.username, user=user.username,
                                             role=user.role, now=state.now())
                st.success(f"Sent to {ui.staff_name(alarm.nearest_responder)}; it escalates to the charge nurse "
                           "if nobody accepts.")
            except Exception as exc:  # noqa: BLE001 - show why the request could not be sent
                st.error(f"Request not sent: {exc}")

with st.expander("Alarm fatigue: alarms per bed per day (last 7 days)", icon="📊"):
    rate = service.alarm_rate(state.repo(), site, state.now(), days=7, ward_id=None if ward == "ALL" else ward)
    total_beds = max(len(rate), 1)
    st.metric("Average alarms per bed per day", f"{rate['per_day'].sum() / total_beds:.1f}")
    left, right = st.columns([3, 2])
    left.plotly_chart(ui.rate_chart(rate), width="stretch", config={"displaylogo": False}, key="rate_chart")
    right.dataframe(rate.head(20), hide_index=True, width="stretch",
                    column_config={"per_day": st.column_config.NumberColumn("per day", format="%.1f"),
                                   "top_kinds": "most frequent kinds"})
