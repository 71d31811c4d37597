"""Streamlit glue for the bedside tablet, the shared workstation and the care-team board: cached
patient records, the once-per-arrival audit, break-glass, the demo badge control, and the blocks
that draw a patient (allergy banner, vitals with NEWS2, meds due, results, reminders, alarms)."""
from __future__ import annotations

import threading
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import bedside_service as bs
from core import care_team
from core.bedside import BedsideView, build_bedside_view, care_context, dose_label, news2_from_vitals, schedule
from core.errors import InvalidInput
from core.security import auth as core_auth
from core.sample_fhir import load_records
from ui import auth, state
from ui.auth import DEMO_STAFF

NURSE_ROLES = ("nurse", "charge_nurse")
RECORDS_TTL_S = 6 * 3600       # the sample is re-based to "now" again after this (a demo left running for days)
_PUMP_LOCK = threading.Lock()


# ---------------------------------------------------------------- cached data

@st.cache_resource(ttl=RECORDS_TTL_S, show_spinner="Loading patient records…")
def records() -> dict:
    return load_records(state.settings().fhir_dir, state.now())


def ensure_care_team(now: datetime) -> None:
    """Seed the shifts running now (cheap when already seeded; at most once a minute per process)."""
    _seed(int(now.timestamp() // 60))


@st.cache_data(max_entries=4, show_spinner=False)
def _seed(minute: int) -> int:
    demo = tuple(DEMO_STAFF.values()) if state.settings().demo_mode else ()
    return care_team.ensure_seeded(state.repo(), state.site(), state.now(), demo_staff=demo)


def variant_for(role: str) -> str:
    return "nurse" if role in NURSE_ROLES else "doctor"


def view_for(patient_id: str, now: datetime, variant: str, last_visit: datetime | None = None,
             bed_id: str | None = None) -> tuple[BedsideView | None, object]:
    rec = records().get(patient_id)
    if rec is None:
        return None, None
    return build_bedside_view(rec, now, last_visit=last_visit, news2=news2_from_vitals, variant=variant,
                              bed_id=bed_id), rec


def patient_alarms(patient_id: str) -> list:
    from core.alarms.tables import load_active
    with state.repo().engine.connect() as conn:
        return [a for a in load_active(conn) if a.patient_id == patient_id]


# ---------------------------------------------------------------- audit + access

def audit_view_once(key: tuple, patient_id: str, reason: str, detail: dict | None = None) -> None:
    """One `patient_record_view` audit row per `key` (arrival / opening) per browser session."""
    seen = st.session_state.setdefault("ws_record_views", set())
    if key in seen:
        return
    auth.record("patient_record_view", object_type="patient", object_id=patient_id, patient_id=patient_id,
                reason=reason, detail=detail)
    seen.add(key)


def grants() -> dict:
    return st.session_state.setdefault("ws_break_glass", {})


def decision(staff_id: str, patient_id: str, now: datetime):
    live = care_team.live_assignments(state.repo(), now, staff_id=staff_id, patient_id=patient_id)
    held = [g for g in grants().values() if g.patient_id == patient_id and g.active(now)]
    rows = [{"staff_id": staff_id, "patient_id": g.patient_id, "granted_at": g.granted_at, "expires_at": g.expires_at}
            for g in held]
    return care_context(staff_id, patient_id, live, now, rows), (held[-1] if held else None)


def drop_grants_except(patient_id: str | None) -> None:
    """Break-glass is for the patient in front of you: leaving the patient ends it."""
    for pid in [p for p in grants() if p != patient_id]:
        grants().pop(pid, None)


def break_glass_form(user, patient_id: str, now: datetime) -> None:
    with st.form(f"btg_{patient_id}", clear_on_submit=False):
        st.markdown("**Emergency access (break the glass)** — for a clinical emergency only. Your name, the "
                    "patient and your reason are recorded and reviewed. Access ends when you leave this bed "
                    f"or after {core_auth.BREAK_GLASS_S // 60} min.")
        reason = st.text_input("Reason (required)", key=f"btg_reason_{patient_id}",
                               placeholder="e.g. patient deteriorating, covering for the assigned doctor")
        if st.form_submit_button("Break the glass and open the record", type="primary", icon=":material/lock_open:"):
            try:
                grants()[patient_id] = core_auth.break_glass(state.repo().engine, user, patient_id, reason, now)
                st.rerun(scope="fragment")
            except InvalidInput as exc:
                st.error(f"Not opened: {exc}.")


# ---------------------------------------------------------------- demo badge

def demo_pipeline():
    """The pipeline that badge holds go through: the feed's own, or (no feed in this process) one
    built once for demo injections."""
    runner = state.feed()
    return runner.pipeline if runner is not None else _own_pipeline()


@st.cache_resource
def _own_pipeline():
    from core.services import build_pipeline
    return build_pipeline(state.site(), state.repo(), state.settings())


def pump_demo(now: datetime) -> None:
    """Without a feed thread, tick the demo pipeline while a hold is on or a session is open, so
    arrival and walking away happen on the page's own clock."""
    if state.feed() is not None or "ws_own_pipeline" not in st.session_state:
        return
    svc = bs.service_of(_own_pipeline())
    if svc is not None and svc.busy() and _PUMP_LOCK.acquire(blocking=False):
        try:
            _own_pipeline().process(pd.DataFrame(), now, source="demo-badge")
        finally:
            _PUMP_LOCK.release()


def demo_badge_control(user, now: datetime) -> None:
    """Demo mode only: put the signed-in clinician's badge at a bed, or walk away."""
    if not state.settings().demo_mode or not user.staff_id:
        return
    with st.expander("Demo: simulate my badge", icon=":material/science:"):
        st.caption("Demo mode only. Sends a position read for your badge every second through the same "
                   "validate → locate → presence → bedside path as the real feed.")
        pipe = demo_pipeline()
        if state.feed() is None:
            st.session_state["ws_own_pipeline"] = True
        svc = bs.service_of(pipe)
        if svc is None:
            st.warning("The bedside service is not installed in the pipeline.")
            return
        site = state.site()
        mine = care_team.my_patients(state.repo(), site, user.staff_id, now)
        ward = site.entities.set_index("entity_id")["ward_id"].get(user.staff_id)
        beds = bs.demo_bed_choices(site.beds, mine["bed_id"].dropna(), ward)
        names = dict(zip(mine["bed_id"], mine["name"]))
        held = svc.held_bed(user.staff_id)
        c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
        bed = c1.selectbox("Bed (my patients first, ★)", beds, index=beds.index(held) if held in beds else 0,
                           key="demo_bed",
                           format_func=lambda b: f"★ {b} · {names[b]} (my patient)" if b in names else f"{b} · not my patient")
        # callbacks run before the rerun, so the buttons below are drawn with the hold already changed
        c2.button(f"Simulate my badge at bed {bed}", key="demo_go", icon=":material/near_me:",
                  on_click=_demo_hold, args=(svc, user.staff_id, bed))
        c3.button("Walk away", key="demo_leave", icon=":material/directions_walk:", disabled=held is None,
                  on_click=svc.release_badge, args=(user.staff_id,))
        if held:
            st.caption(f"Your simulated badge is at bed {held}.")
        if err := st.session_state.pop("demo_error", None):
            st.error(err)


def _demo_hold(svc, staff_id: str, bed_id: str) -> None:
    try:
        svc.hold_badge(staff_id, bed_id, state.now())
    except InvalidInput as exc:
        st.session_state["demo_error"] = f"Badge not moved: {exc}."


# ---------------------------------------------------------------- drawing a patient
# Material icons and coloured badges rather than emoji: they render on every tablet and in headless
# browsers, and colour is never the only cue (each line also says OVERDUE / URGENT / NEW in words).
SEVERITY_MARK = {"urgent": ":red[:material/error:]", "warn": ":orange[:material/warning:]", "info": ":blue[:material/info:]"}


def _age_sex(view: BedsideView) -> str:
    age = f"{view.age_years} y" if view.age_years is not None else "age unknown"
    return f"{age}, {view.sex}" if view.sex else age


def patient_header(view: BedsideView, access_note: str | None = None) -> None:
    st.markdown(f"## {view.name}")
    st.markdown(f"**{_age_sex(view)}** · MRN **{view.mrn}** · bed **{view.bed_id or '—'}**"
                + (f" · :orange-badge[{access_note}]" if access_note else ""))
    allergy_banner(view)


def allergy_banner(view: BedsideView) -> None:
    if not view.allergies:
        st.success("No known allergies recorded", icon=":material/check_circle:")
        return
    high = [a for a in view.allergies if a.high_risk]
    other = [a for a in view.allergies if not a.high_risk]

    def label(a) -> str:
        react = f" ({', '.join(a.reactions)})" if a.reactions else ""
        return f"{a.display}{react}"

    if high:
        st.error("**ALLERGY — HIGH RISK:** " + "; ".join(label(a) for a in high)
                 + (f"  \nAlso: {'; '.join(label(a) for a in other)}" if other else ""), icon=":material/warning:")
    else:
        st.warning("**Allergies:** " + "; ".join(label(a) for a in other), icon=":material/info:")


def reminders_block(view: BedsideView) -> None:
    shown = [r for r in view.reminders if r.kind != "allergy"]      # allergies have their own banner
    order = {"urgent": 0, "warn": 1}
    lines = [f"{SEVERITY_MARK.get(r.severity, '•')} {r.text}" for r in sorted(shown, key=lambda r: order.get(r.severity, 2))]
    if lines:
        st.markdown("  \n".join(lines))


def _when(ts) -> str:
    t = state.local(pd.Timestamp(ts).to_pydatetime())
    today = state.local(state.now()).date()
    return f"{t:%H:%M}" if t.date() == today else f"{t:%a %H:%M}"


def _local(ts) -> str:
    return f"{state.local(pd.Timestamp(ts).to_pydatetime()):%H:%M}"


def _dose_label(ts, status: str) -> str:
    return dose_label(state.local(pd.Timestamp(ts).to_pydatetime()), status, state.local(state.now()).date())


def meds_block(view: BedsideView) -> None:
    st.markdown("##### Medications: next 2 h and overdue")
    if not view.meds_due:
        st.caption("Nothing due in the next 2 hours.")
        return
    lines = []
    for d in view.meds_due:
        label = _dose_label(d.due, d.status)
        tag = f":red-badge[{label}]" if d.status == "overdue" else f":blue-badge[{label}]"
        lines.append(f"{tag} **{d.medication}**" + (f" — {d.dosage_text}" if d.dosage_text else ""))
    st.markdown("  \n".join(lines))


def problems_block(view: BedsideView) -> None:
    st.markdown("##### Active problems")
    if not view.problems:
        st.caption("No active problems recorded.")
        return
    st.markdown("  \n".join(f"• {c.display}" for c in view.problems))


def _num(v) -> str:
    if v is None:
        return "—"
    if v.value is None:
        return v.value_text or "—"
    return f"{v.value:.1f}" if v.name == "temp_c" else f"{v.value:.0f}"


def vitals_block(view: BedsideView, now: datetime) -> None:
    st.markdown("##### Latest vitals and NEWS2")
    if not view.latest_vitals:
        st.caption("No observations recorded.")
        return
    v = {x.name: x for x in view.latest_vitals}
    taken = max(x.ts for x in view.latest_vitals)
    ago = int((now - taken).total_seconds() // 60)
    left, right = st.columns([2, 3], vertical_alignment="top")
    with left:
        band = news2_band_label(view.news2)
        st.metric("NEWS2", "—" if view.news2 is None else view.news2, band, delta_color="off" if band == "low" else "inverse",
                  delta_arrow="off")
        o2 = f" on O₂ {_num(v['inspired_o2_pct'])} %" if "inspired_o2_pct" in v else " on air"
        st.markdown(f"BP **{_num(v.get('sbp_mmhg'))}/{_num(v.get('dbp_mmhg'))}** · pulse **{_num(v.get('pulse_per_min'))}**  \n"
                    f"SpO₂ **{_num(v.get('spo2_pct'))} %**{o2}  \n"
                    f"RR **{_num(v.get('resp_rate_per_min'))}** · temp **{_num(v.get('temp_c'))} °C** · "
                    f"ACVPU **{_num(v.get('consciousness'))}**")
        st.caption(f"taken {_when(taken)} ({ago} min ago)")
    with right:
        if len(view.news2_history) > 1:
            st.plotly_chart(news2_chart(view), width="stretch", config={"displayModeBar": False, "staticPlot": True},
                            key=f"news2_{view.patient_id}")


def news2_band_label(total: int | None) -> str:
    # RCP NEWS2 Chart 3 bands (standards.md 1.2): 0-4 low, 5-6 medium, >=7 high
    if total is None:
        return "no score"
    return "high" if total >= 7 else "medium" if total >= 5 else "low"


def news2_chart(view: BedsideView) -> go.Figure:
    ts = [state.local(t) for t, _ in view.news2_history]
    tot = [s for _, s in view.news2_history]
    top = max(8, max(tot) + 1)
    fig = go.Figure(go.Scatter(x=ts, y=tot, mode="lines+markers", line=dict(color="#0072B2", width=2),
                               marker=dict(size=5), name="NEWS2"))
    # NEWS2 bands: 5-6 medium, >=7 high (RCP NEWS2 Chart 3, standards.md 1.2)
    fig.add_hrect(y0=4.5, y1=6.5, fillcolor="#E69F00", opacity=0.18, line_width=0)
    fig.add_hrect(y0=6.5, y1=top, fillcolor="#D55E00", opacity=0.18, line_width=0)
    fig.update_layout(height=170, margin=dict(l=4, r=4, t=22, b=4), showlegend=False, plot_bgcolor="white",
                      title=dict(text="NEWS2, last 24 h", font=dict(size=12), x=0, y=0.98),
                      yaxis=dict(range=[-0.5, top], title=None, dtick=2, gridcolor="#eee"),
                      xaxis=dict(title=None, tickformat="%H:%M", gridcolor="#eee", nticks=5))
    return fig


def results_block(view: BedsideView, last_visit: datetime | None = None) -> None:
    since = f"since your last visit ({_when(last_visit)})" if last_visit else "in the last 24 h"
    st.markdown(f"##### Results {since}")
    if view.results_new:
        st.markdown("  \n".join(f":green-badge[NEW {_when(r.issued)}] {r.display}"
                                 + (f" — {r.conclusion}" if r.conclusion else "") for r in view.results_new))
    else:
        st.caption("No new results.")
    st.markdown("##### Pending")
    if not view.results_pending:
        st.caption("Nothing pending.")
        return
    st.markdown("  \n".join((":red-badge[URGENT] " if getattr(p, "priority", None) in ("urgent", "stat", "asap")
                              else ":gray-badge[pending] ") + p.display for p in view.results_pending))


def alarms_block(patient_id: str) -> None:
    alarms = patient_alarms(patient_id)
    if not alarms:
        return
    colour = {"high": "red", "medium": "orange"}
    st.markdown("##### Active alarms")
    st.markdown("  \n".join(f":{colour.get(a.priority, 'gray')}-badge[{a.priority.upper()}] {a.message} · "
                             f"{a.state.replace('_', ' ')} since {_when(a.raised_at)}"
                             for a in sorted(alarms, key=lambda a: {"high": 0, "medium": 1}.get(a.priority, 2))))


def nursing_block(view: BedsideView) -> None:
    st.markdown("##### Nursing tasks")
    if not view.nursing_tasks:
        st.caption("No tasks due now.")
    for t in view.nursing_tasks:
        st.checkbox(t, key=f"task_{view.patient_id}_{t}")


def patient_view(view: BedsideView, now: datetime, last_visit: datetime | None = None) -> None:
    """The whole patient at a glance, most urgent first; the nurse variant starts with the tasks."""
    reminders_block(view)
    alarms_block(view.patient_id)
    if view.variant == "nurse":
        nursing_block(view)
    vitals_block(view, now)
    left, right = st.columns(2, gap="medium")
    with left:
        meds_block(view)
        problems_block(view)
    with right:
        results_block(view, last_visit)


# ---------------------------------------------------------------- lists

def my_patient_rows(staff_id: str, now: datetime, variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per own patient with the headline numbers, today's schedule over all of them)."""
    mine = care_team.my_patients(state.repo(), state.site(), staff_id, now)
    rows, plans = [], []
    for r in mine.itertuples(index=False):
        view, rec = view_for(r.patient_id, now, variant, bed_id=r.bed_id)
        if view is None:
            rows.append({"bed": r.bed_id, "patient": r.name, "patient_id": r.patient_id, "NEWS2": None,
                         "meds ≤2 h": "", "pending": 0, "allergies": "record not found"})
            continue
        over = sum(d.status == "overdue" for d in view.meds_due)
        rows.append({"bed": r.bed_id, "patient": view.name, "patient_id": r.patient_id, "NEWS2": view.news2,
                     "meds ≤2 h": f"{len(view.meds_due) - over}" + (f" +{over} OVERDUE" if over else ""),
                     "pending": len(view.results_pending),
                     "allergies": ("HIGH RISK: " if view.high_risk_allergy else "") + ", ".join(a.display for a in view.allergies)})
        plans.append(schedule(view, rec, now))
    plan = pd.concat(plans, ignore_index=True) if plans else pd.DataFrame(columns=["due", "bed_id", "name", "kind", "what", "status"])
    return pd.DataFrame(rows), plan


def patients_table(rows: pd.DataFrame, height: int | None = None) -> None:
    if rows.empty:
        return
    st.dataframe(rows.drop(columns=["patient_id"]), hide_index=True, width="stretch", height=height or "auto",
                 column_config={"bed": st.column_config.TextColumn("bed", width="small"),
                                "NEWS2": st.column_config.NumberColumn("NEWS2", format="%d", width="small"),
                                "pending": st.column_config.NumberColumn("pending", width="small"),
                                "allergies": st.column_config.TextColumn("allergies", width="medium")})


def schedule_table(plan: pd.DataFrame, now: datetime, hours: float = 12.0) -> None:
    if plan.empty:
        st.caption("Nothing scheduled.")
        return
    horizon = pd.Timestamp(now) + pd.Timedelta(hours=hours)
    timed = plan[plan["due"].notna() & (plan["due"] <= horizon)].sort_values("due")
    pending = plan[plan["due"].isna()]
    shown = pd.concat([timed, pending], ignore_index=True)
    order = {"overdue": "OVERDUE", "due": "due", "pending": "pending"}
    st.dataframe(pd.DataFrame({
        "time": [_dose_label(t, st_) if st_ in ("overdue", "due") and not pd.isna(t) else ""
                 for t, st_ in zip(shown["due"], shown["status"])],
        "status": shown["status"].map(order), "bed": shown["bed_id"], "patient": shown["name"],
        "what": shown["what"]}), hide_index=True, width="stretch",
        column_config={"time": st.column_config.TextColumn("time", width="medium"),
                       "status": st.column_config.TextColumn("status", width="small"),
                       "bed": st.column_config.TextColumn("bed", width="small")})


def off_shift_text(staff_id: str, now: datetime) -> str:
    site = state.site()
    ent = site.entities.set_index("entity_id")
    pattern = ent.at[staff_id, "shift"] if staff_id in ent.index else None
    hours = {"day": "07:00–19:30", "night": "19:00–07:30"}.get(pattern or "", "")
    return f"your {pattern} shift runs {hours} ({site.timezone})" if pattern else "no shift pattern is recorded for you"


__all__ = ["records", "ensure_care_team", "view_for", "audit_view_once", "decision", "break_glass_form",
           "demo_badge_control", "pump_demo", "patient_header", "patient_view", "my_patient_rows", "patients_table",
           "schedule_table", "off_shift_text", "drop_grants_except"]
