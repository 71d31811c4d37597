"""Care team: who cares for whom on each ward shift. Everyone on the page's roles can read it; the
charge nurse (or a manager) changes it, and every change is audited."""
import pandas as pd
import streamlit as st

from core import care_team as ct
from core.errors import AccessDenied, InvalidInput
from ui import auth, render, state
from ui import bedside_ui as ui

user = auth.require_page("care_team")
site, now = state.site(), state.now()
ui.ensure_care_team(now)
st.title("Care team")
render.updated(now)
editor = user.role in ct.EDIT_ROLES

wards = site.wards["ward_id"].tolist()
mine = site.entities.set_index("entity_id")["ward_id"].get(user.staff_id) if user.staff_id else None
c1, c2 = st.columns(2)
ward = c1.selectbox("Ward", wards, index=wards.index(mine) if mine in wards else 0,
                    format_func=lambda w: site.wards.set_index("ward_id").at[w, "name"], key="ct_ward")
shifts = ct.ward_shifts(site, ward, now, ahead=1)
if shifts.empty:
    st.info("No shift is running on this ward now.")
    st.stop()
pick = c2.selectbox("Shift", list(range(len(shifts))), key="ct_shift",
                    format_func=lambda i: ct.shift_label(shifts.at[i, "start"], shifts.at[i, "end"], site.tz)
                    + (" (now)" if shifts.at[i, "start"] <= pd.Timestamp(now) else " (next)"))
start, end = shifts.at[pick, "start"].to_pydatetime(), shifts.at[pick, "end"].to_pydatetime()
ct.seed_shift(state.repo(), site, ward, start, end, now)
staff = ct.shift_staff(site, ward, start)
names = dict(zip(staff["staff_id"], staff["name"] + " (" + staff["role"].str.replace("_", " ") + ")"))
board = ct.board(state.repo(), site, ward, start)

if not editor:
    st.caption("Read only: the shift's charge nurse or a ward manager allocates patients.")
    st.dataframe(board.rename(columns={"bed_id": "bed", "name": "patient"}).drop(columns=["patient_id"]),
                 hide_index=True, width="stretch")
    st.stop()

nurses = staff[staff["role"].isin(ct.NURSING_ROLES)]["staff_id"].tolist()
st.caption("Change a patient's nurse in the table, then save. Doctors cover the whole ward by default; "
           "add or remove a clinician for one patient below.")
edited = st.data_editor(
    board.assign(nurse=board["nurse"].where(board["nurse"].isin(nurses), None)),
    hide_index=True, width="stretch", key="ct_board", disabled=["bed_id", "patient_id", "name", "doctors"],
    column_config={"bed_id": "bed", "name": "patient", "patient_id": None,
                   "nurse": st.column_config.SelectboxColumn("nurse", options=nurses, required=False),
                   "doctors": "doctors"})
reason = st.text_input("Reason for the change (recorded)", key="ct_reason", placeholder="e.g. skill mix, 1:1 needed")
changed = edited[edited["nurse"].fillna("") != board["nurse"].where(board["nurse"].isin(nurses), None).fillna("")]
if st.button(f"Save {len(changed)} change(s)", type="primary", disabled=changed.empty, key="ct_save"):
    try:
        for row in changed.itertuples(index=False):
            if row.nurse:
                ct.set_nurse(state.repo(), site, ward_id=ward, shift_start=start, shift_end=end, patient_id=row.patient_id,
                             nurse_id=row.nurse, by=user.username, by_role=user.role, now=now, reason=reason or None)
        st.success(f"Saved {len(changed)} change(s).")
        st.rerun()
    except (AccessDenied, InvalidInput) as exc:
        st.error(str(exc))

with st.form("ct_one"):
    st.markdown("**Add or remove a clinician for one patient**")
    f1, f2 = st.columns(2)
    who = f1.selectbox("Clinician", staff["staff_id"].tolist(), format_func=lambda s: names.get(s, s))
    pid = f2.selectbox("Patient", board["patient_id"].tolist(),
                       format_func=lambda p: " · ".join(board.set_index("patient_id").loc[p, ["bed_id", "name"]]))
    b1, b2 = st.columns(2)
    add, remove = b1.form_submit_button("Assign"), b2.form_submit_button("Remove")
    if add or remove:
        try:
            if add:
                done = ct.assign(state.repo(), site, staff_id=who, patient_id=pid, ward_id=ward, shift_start=start,
                                 shift_end=end, by=user.username, by_role=user.role, now=now, reason=reason or None)
            else:
                done = ct.unassign(state.repo(), staff_id=who, patient_id=pid, shift_start=start, by=user.username,
                                   by_role=user.role, now=now, reason=reason or None)
            st.success("Saved.") if done else st.info("No change: that was already the case.")
        except (AccessDenied, InvalidInput) as exc:
            st.error(str(exc))

changes = ct.history(state.repo(), ward, now - pd.Timedelta(hours=24))
changes = changes[changes["source"] == "manual"]
if len(changes):
    st.subheader("Changes in the last 24 h")
    st.dataframe(pd.DataFrame({"when": changes["changed_at"].dt.tz_convert(site.tz).dt.strftime("%H:%M"),
                               "by": changes["changed_by"], "clinician": changes["staff_id"].map(lambda s: names.get(s, s)),
                               "patient": changes["patient_id"], "now": changes["active"].map({True: "assigned", False: "removed"})}),
                 hide_index=True, width="stretch")
