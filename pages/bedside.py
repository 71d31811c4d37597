"""At the bedside (clinician tablet): when your badge is at the bed of a patient in your care, the
page switches to that patient within seconds; walking away returns to your patients."""
import streamlit as st

from core.bedside_service import badge_status, current_bedside, last_visit
from ui import auth, render, state
from ui import bedside_ui as ui

user = auth.require_page("bedside")
site, cfg = state.site(), state.settings()

if not user.staff_id:
    st.title("At the bedside")
    st.warning("Your account is not linked to a staff badge, so Wardsight cannot tell which bed you are at. "
               "Ask an administrator to link your badge.")
    st.stop()


@st.fragment(run_every=1.0)
def bedside() -> None:
    now = state.now()
    ui.pump_demo(now)
    ui.ensure_care_team(now)
    here = current_bedside(state.repo(), user.staff_id, now, fresh_s=cfg.bedside_exit_s + 2)
    if here is None or here.patient_id is None:
        ui.drop_grants_except(None)
        away(now, here)
        return
    ui.drop_grants_except(here.patient_id)
    access, grant = ui.decision(user.staff_id, here.patient_id, now)
    if access.access != "full":
        not_in_care(here, now)
        return
    since = last_visit(state.repo(), user.staff_id, here.patient_id, here.since)
    view, _ = ui.view_for(here.patient_id, now, ui.variant_for(user.role), last_visit=since, bed_id=here.bed_id)
    if view is None:
        st.warning(f"At bed {here.bed_id}: no record found for patient {here.patient_id}.")
        return
    reason = f"break-glass: {grant.reason}" if grant else "at the bedside, patient in my care"
    ui.audit_view_once(("bedside", here.session_id, here.patient_id, bool(grant)), here.patient_id, reason,
                       {"bed_id": here.bed_id, "session_id": here.session_id})
    render.updated(now, f" · at bed {here.bed_id} since {state.local(here.since):%H:%M:%S}")
    ui.patient_header(view, "🔓 emergency access" if grant else None)
    ui.patient_view(view, now, since)


def away(now, here) -> None:
    st.title("My patients")
    render.updated(now)
    seen = badge_status(state.repo(), site, user.staff_id, now, cfg.stale_after_s)
    if here is not None:
        st.info(f"You are at bed {here.bed_id}, which has no patient.")
    elif not seen.seen and not seen.on_shift:
        st.warning("Your badge is not being seen; you may be off shift "
                   f"({ui.off_shift_text(user.staff_id, now)}). The page switches to a patient when your "
                   "badge is at their bed.", icon=":material/badge:")
    elif not seen.seen:
        st.warning("Your badge is not being seen although you are on shift: check that you are wearing it "
                   "and that it is charged. Until then this page cannot follow you to a bed.",
                   icon=":material/badge:")
    else:
        st.info("Go to a patient's bed: this page switches to them automatically.", icon=":material/bed:")
    st.caption(f"Arriving at a bed: the bedside session opens after {cfg.bedside_dwell_s:g} s there "
               "(WARDSIGHT_BEDSIDE_DWELL_S), then this page switches within 1–2 s — patient on screen "
               f"≈ {cfg.bedside_dwell_s:g} s + ≤ 2 s after arrival.")
    rows, _ = ui.my_patient_rows(user.staff_id, now, ui.variant_for(user.role))
    if rows.empty:
        st.caption("No patients are assigned to you on a shift running now. The care team page shows the allocation.")
        return
    st.caption(f"{len(rows)} patients in your care this shift")
    ui.patients_table(rows)


def not_in_care(here, now) -> None:
    render.updated(now)
    st.title(f"Bed {here.bed_id}")
    st.info("This patient is not in your care this shift. Only the location is shown.",
            icon=":material/location_on:")
    if auth.can("break_glass"):
        ui.break_glass_form(user, here.patient_id, now)


bedside()
ui.demo_badge_control(user, state.now())
