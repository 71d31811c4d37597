"""Contact tracing: who was near a person during a period — from our own presence data (same room,
or within N metres) or from an imported SocioPatterns contact file — with episodes, cumulative
contact time, second-degree contacts, a network view and an audited export. Every query is audited
with its reason (tracing staff and patients is a legitimate purpose, but never an anonymous one)."""
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from core.errors import InvalidInput
from core.proximity import ContactFileError, contact_network, exposures, second_degree
from ui import auth, render, state
from ui import ops_ui as ui

auth.require_page("contact_tracing")

site = state.site()
cfg = state.settings()
st.title("Contact tracing")
st.caption("Every query is recorded in the audit log with your reason.")

source = st.radio("Contacts from", ["presence", "file"], horizontal=True,
                  format_func={"presence": "our presence data (co-location)",
                               "file": "an imported SocioPatterns file"}.get)
labels: dict[str, str] = {}
contacts, within_m = None, None
if source == "presence":
    labels = ui.person_labels(auth.can("see_patient_identity"))
    c1, c2, c3 = st.columns([2.4, 1.2, 1.4])
    person = c1.selectbox("Person", list(labels), format_func=labels.get, index=None,
                          placeholder="Choose a patient or a member of staff")
    hours = c2.selectbox("Period", [1, 4, 8, 24, 72], index=2, format_func=lambda h: f"last {h} h")
    how = c3.selectbox("Contact means", ["room", "near"],
                       format_func={"room": "same room", "near": "within N metres"}.get)
    within_m = st.slider("N (metres)", 0.5, 5.0, 2.0, 0.5) if how == "near" else None
    end = pd.Timestamp(ui.now_minute())
    start = end - pd.Timedelta(hours=hours)
    object_type = "patient" if person and person.startswith("P") and person in set(site.patients["patient_id"]) else "staff"
else:
    f1, f2 = st.columns([2, 1])
    upload = f1.file_uploader("SocioPatterns contact file (t i j Si Sj; .dat or .dat.gz)", type=["dat", "gz", "txt"])
    path = f2.text_input("…or a path on the server", placeholder="/data/hospital_lyon_contacts.dat.gz")
    o1, o2, o3 = st.columns(3)
    o_day = o1.date_input("Origin date (t = 0)", datetime(2010, 12, 6).date())
    o_time = o2.time_input("Origin time", time(13, 0), step=60)
    o_tz = o3.selectbox("Origin time zone", ["Europe/Paris", "Europe/London", "UTC", "America/New_York"])
    origin = pd.Timestamp(datetime.combine(o_day, o_time, tzinfo=ZoneInfo(o_tz)))
    data = upload.getvalue() if upload is not None else None
    if data is None and path:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            st.error(f"Cannot read {path}: {exc}")
    if data is None:
        st.info("Upload a contact file or give its path to trace contacts in it.")
        person = None
    else:
        try:
            contacts = ui.sociopatterns(data, origin)
        except ContactFileError as exc:
            st.error(str(exc))
            st.stop()
        roles = pd.concat([contacts[["person_a", "role_a"]].set_axis(["id", "role"], axis=1),
                           contacts[["person_b", "role_b"]].set_axis(["id", "role"], axis=1)]).drop_duplicates("id")
        labels = dict(zip(roles["id"], roles["id"] + " · " + roles["role"]))
        st.caption(f"{len(contacts):,} contact records among {len(labels)} people, "
                   f"{contacts['ts'].min():%d %b %Y %H:%M} – {contacts['ts'].max():%d %b %Y %H:%M} UTC.")
        person = st.selectbox("Person", sorted(labels, key=lambda p: (len(p), p)), format_func=labels.get, index=None)
        start = contacts["ts"].min() - pd.Timedelta(seconds=20)
        end = contacts["ts"].max()
        object_type = "sociopatterns_person"

g1, g2 = st.columns(2)
gap_s = g1.number_input("Gap that ends an episode (s)", 0, 3600, 60, 20)
min_s = g2.number_input("Second degree via contacts of at least (s)", 0, 36000, 60, 20)
reason = st.text_input("Reason for this query (required, recorded in the audit log)",
                       placeholder="e.g. norovirus case in Bay 2, IPC ref 2026-114")
query = {"source": source, "person": person, "start": str(start) if person else None,
         "end": str(end) if person else None, "within_m": within_m}
if st.button("Trace contacts", type="primary", disabled=person is None):
    if not reason.strip():
        st.error("Give a reason: contact tracing is audited.")
    else:
        auth.record("contact_trace", object_type=object_type, object_id=str(person),
                    patient_id=person if object_type == "patient" else None, reason=reason.strip(),
                    detail={k: v for k, v in query.items() if k != "person"} | {"gap_s": gap_s})
        st.session_state["ct_query"] = query
if st.session_state.get("ct_query") != query or person is None:
    st.stop()

if source == "presence":
    contacts = ui.colocation(cfg.db_url, start, end, within_m)
    render.updated(end.to_pydatetime(), f" · contacts {state.local(start.to_pydatetime()):%d %b %H:%M} – "
                                        f"{state.local(end.to_pydatetime()):%H:%M}")
try:
    first = exposures(contacts, person, start, end, gap_s=gap_s)
    second = second_degree(contacts, person, start, end, gap_s=gap_s, min_contact_s=min_s)
except InvalidInput as exc:
    st.error(str(exc))
    st.stop()

m1, m2, m3 = st.columns(3)
m1.metric("Direct contacts", len(first))
m2.metric("Total contact time", ui.duration_text(first["contact_s"].sum()) if len(first) else "—")
m3.metric("Second degree only", int(second.loc[~second["also_first_degree"], "other_id"].nunique()))
if first.empty:
    st.info("No contacts in this period.")
    st.stop()

tz = site.tz if source == "presence" else origin.tz


def _local(s: pd.Series) -> pd.Series:
    return s.dt.tz_convert(tz).dt.strftime("%d %b %H:%M:%S")


st.subheader("Direct contacts")
st.dataframe(pd.DataFrame({"person": first["other_id"].map(lambda p: labels.get(p, p)), "role": first["other_role"],
                           "episodes": first["episodes"], "contact": first["contact_s"].map(ui.duration_text),
                           "first": _local(first["first_contact"]), "last": _local(first["last_contact"])}),
             hide_index=True, width="stretch", height=min(420, 38 + 35 * len(first)))
st.subheader("Second-degree contacts")
st.caption(f"People met by a direct contact (of at least {min_s} s) after that contact first met the person.")
if second.empty:
    st.info("None.")
else:
    st.dataframe(pd.DataFrame({"via": second["via_id"].map(lambda p: labels.get(p, p)),
                               "person": second["other_id"].map(lambda p: labels.get(p, p)),
                               "role": second["other_role"], "contact": second["contact_s"].map(ui.duration_text),
                               "also direct": second["also_first_degree"]}),
                 hide_index=True, width="stretch", height=300)

near = set(first["other_id"]) | {person}
net = contact_network(contacts[contacts["person_a"].isin(near) & contacts["person_b"].isin(near)], start, end, gap_s=gap_s)
short = {p: labels.get(p, p).split(" · ")[0] for p in net.nodes["person_id"]}
st.plotly_chart(ui.network_figure(net.nodes, net.edges, person, short), width="stretch")

st.subheader("Export")
ui.export_block({"direct_contacts": first, "second_degree": second, "network_edges": net.edges},
                object_type=object_type, object_id_prefix=f"{person}:", reason=reason.strip(),
                detail={k: v for k, v in query.items() if k != "person"}, key="ct")
