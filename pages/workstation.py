"""My patients (shared workstation): only the signed-in clinician's own patients, today's schedule
(doses due, observations due, results pending) and tasks; open one patient's full record."""
import streamlit as st

from ui import auth, render, state
from ui import bedside_ui as ui

user = auth.require_page("workstation")
now = state.now()
st.title("My patients")
render.updated(now)

if not user.staff_id:
    st.warning("Your account is not linked to a staff member, so it has no patient list.")
    st.stop()

ui.ensure_care_team(now)
variant = ui.variant_for(user.role)
rows, plan = ui.my_patient_rows(user.staff_id, now, variant)
if rows.empty:
    st.info("No patients are assigned to you on a shift running now "
            f"({ui.off_shift_text(user.staff_id, now)}). The care team page shows the allocation.")
    st.stop()
for pid in rows["patient_id"]:          # the list shows record content: one audit row per patient per sign-in
    ui.audit_view_once(("workstation_list", user.created_at, pid), pid, "own patient list on the workstation")

st.caption(f"{len(rows)} patients in your care this shift")
ui.patients_table(rows)

st.subheader("Today's schedule")
st.caption("Doses due in the next 12 h or overdue, next observations, pending results.")
ui.schedule_table(plan, now)

st.subheader("Open a patient")
labels = dict(zip(rows["patient_id"], rows["bed"] + " · " + rows["patient"]))
pid = st.selectbox("Patient", [None] + rows["patient_id"].tolist(),
                   format_func=lambda p: "Choose a patient…" if p is None else labels[p], key="ws_open_patient")
if pid:
    view, _ = ui.view_for(pid, now, variant)
    if view is None:
        st.warning("No record found for this patient.")
    else:
        ui.audit_view_once(("workstation_open", user.created_at, pid), pid, "opened from my patients (workstation)")
        ui.patient_header(view)
        ui.patient_view(view, now)
