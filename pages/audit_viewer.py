"""Audit log (managers, admins): who did what, when and why; check the hash chain; export (audited);
security events raised by the feed (suspected cloned tags)."""
from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from core.models import to_ms
from core.security import audit
from core.security.hooks import security_event_log
from ui import auth, render, state

auth.require_page("audit_viewer")
engine = state.repo().engine
site = state.site()

st.title("Audit log")
st.caption("Append-only and hash-chained: editing, deleting or reordering a row breaks the chain at that row.")

c1, c2, c3 = st.columns(3)
actor = c1.selectbox("Who", ["(anyone)"] + audit.actors(engine))
picked = c2.multiselect("Action", audit.actions(engine), placeholder="any action")
patient = c3.text_input("Patient id", placeholder="e.g. P001")
today = state.local(state.now()).date()
d1, d2, d3 = st.columns(3)
start = d1.date_input("From", today - timedelta(days=7))
end = d2.date_input("To (inclusive)", today)
limit = d3.selectbox("Show at most", [200, 1000, 5000], index=1)

since = datetime.combine(start, time.min, tzinfo=site.tz)
until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=site.tz)
rows = audit.entries(engine, actor=None if actor == "(anyone)" else actor, actions=picked or None,
                     patient_id=patient.strip() or None, since_ms=to_ms(since), until_ms=to_ms(until), limit=limit)
table = pd.DataFrame({
    "seq": rows["seq"],
    "time": pd.to_datetime(rows["ts_ms"].astype("int64"), unit="ms", utc=True).dt.tz_convert(site.tz).dt.strftime("%Y-%m-%d %H:%M:%S"),
    "who": rows["actor"], "role": rows["role"].str.replace("_", " "), "action": rows["action"].str.replace("_", " "),
    "object": rows["object_type"] + " " + rows["object_id"].fillna(""), "patient": rows["patient_id"].fillna(""),
    "reason": rows["reason"].fillna(""), "detail": rows["detail"].fillna("")})
render.updated(state.now(), f" · {len(table)} rows" + (" (limit reached: narrow the filters)" if len(table) == limit else ""))
st.dataframe(table, hide_index=True, width="stretch", height=min(520, 35 * (len(table) + 1) + 3))

v, e, _ = st.columns([1, 1, 3])
if v.button("Verify the chain", icon=":material/verified:", type="primary"):
    result = audit.verify_chain(engine)
    if result.ok:
        st.success(f"Chain intact: {result.checked} rows checked. Head: seq {result.head_seq}, "
                   f"hash {str(result.head_hash)[:16]}… — keep this somewhere else to detect deleted newest rows.")
    else:
        st.error(f"Chain broken at seq {result.first_broken_seq}: {result.reason}. "
                 f"{result.checked} rows before it are intact.")
if auth.can("export"):
    filters = {"actor": actor, "actions": picked, "patient_id": patient.strip() or None,
               "from": start.isoformat(), "to": end.isoformat()}
    e.download_button("Export CSV", table.to_csv(index=False).encode(), file_name=f"wardsight-audit-{today}.csv",
                      mime="text/csv", icon=":material/download:",
                      on_click=lambda: auth.record("export", object_type="audit_log", object_id="csv",
                                                   detail={"rows": len(table), "filters": filters}))
    st.caption("Exports are themselves written to the audit log.")

st.subheader("Security events")
events = security_event_log(engine, since_ms=to_ms(since))
if events.empty:
    st.caption("No suspected cloned or spoofed tags in this period.")
else:
    st.dataframe(pd.DataFrame({
        "first seen": pd.to_datetime(events["first_ms"], unit="ms", utc=True).dt.tz_convert(site.tz).dt.strftime("%m-%d %H:%M:%S"),
        "last seen": pd.to_datetime(events["last_ms"], unit="ms", utc=True).dt.tz_convert(site.tz).dt.strftime("%m-%d %H:%M:%S"),
        "event": events["kind"].str.replace("_", " "), "tag": events["tag_id"], "entity": events["entity_id"],
        "places": events["place_a"] + " ↔ " + events["place_b"], "hops": events["hops"], "why": events["reason"]}),
        hide_index=True, width="stretch")
