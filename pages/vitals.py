"""Vital signs & NEWS2: the ward's latest scores with monitoring frequency due / overdue, and for one
patient the NEWS2 trend and latest observations with subscores. Every patient-record view is
audited; names only with see_patient_identity."""
from datetime import timedelta

import pandas as pd
import streamlit as st

from core.alarms import service
from core.alarms.rules import DEFAULT_RULES
from core.alarms.vitals import PARAMETERS, news2_frame
from ui import alarms_ui as ui
from ui import auth, render, state

auth.require_page("vitals")
if not auth.can("see_patient_record"):
    st.error("Your role may not see patient records.")
    st.stop()
site, cfg = state.site(), state.settings()
identity = auth.can("see_patient_identity")
wards = site.wards.set_index("ward_id")["name"]
pts = ui.clinical().patients

st.title("Vital signs & NEWS2")
render.feed_banner()
c1, c2 = st.columns([1, 2])
ward = c1.selectbox("Ward", list(wards.index), format_func=wards.get, key="vs_ward")
here = pts[pts["ward_id"] == ward].sort_values("bed_id")
patient = c2.selectbox("Patient", list(here["patient_id"]), key="vs_patient",
                       format_func=lambda p: f"bed {here.set_index('patient_id').at[p, 'bed_id']} · "
                                             f"{ui.patient_label(p, identity=identity)}")
if st.session_state.get("vs_audited") != patient:
    auth.record("patient_record_view", object_type="patient", object_id=patient, patient_id=patient,
                reason="vital signs review", detail={"page": "vitals", "what": "NEWS2 trend and observations"})
    st.session_state["vs_audited"] = patient

LIMIT_S = dict(DEFAULT_RULES.vitals.overdue_after_s)


def ward_table(latest: pd.DataFrame, now) -> pd.DataFrame:
    t = here[["patient_id", "bed_id", "monitoring"]].rename(columns={"monitoring": "monitor"})
    t["patient"] = t["patient_id"].map(lambda p: ui.patient_label(p, identity=identity))
    lt = latest.set_index("patient_id") if len(latest) else pd.DataFrame()
    for c in ("news2_total", "news2_risk", "monitoring", "ts"):
        t[c] = t["patient_id"].map(lt[c]) if c in lt else None
    due = pd.to_datetime(t["ts"], utc=True) + pd.to_timedelta(t["monitoring"].map(LIMIT_S).astype(float), unit="s")
    t["last obs"] = pd.to_datetime(t["ts"], utc=True).dt.tz_convert(site.tz).dt.strftime("%H:%M")
    t["due by"] = due.dt.tz_convert(site.tz).dt.strftime("%H:%M")
    t["status"] = (due < now).map({True: "⏰ OVERDUE", False: "on time"})
    return t[["bed_id", "patient", "news2_total", "news2_risk", "monitoring", "last obs", "due by", "status", "monitor"]]


@st.fragment(run_every=max(cfg.refresh_s, 5.0))
def vitals() -> None:
    now = state.now()
    render.updated(now)
    latest = service.latest_vitals(state.repo(), now - timedelta(hours=13))
    latest = latest[latest["patient_id"].isin(here["patient_id"])] if len(latest) else latest
    st.subheader("Ward: latest NEWS2 and observation frequency (RCP 2017)")
    st.dataframe(ward_table(latest, now), hide_index=True, width="stretch",
                 column_config={"news2_total": "NEWS2", "news2_risk": "risk", "monitoring": "minimum frequency",
                                "monitor": "monitoring"})
    v = service.vital_series(state.repo(), patient, now - timedelta(hours=12))
    bed = here.set_index("patient_id").at[patient, "bed_id"]
    st.subheader(f"Bed {bed} · {ui.patient_label(patient, identity=identity)}")
    left, right = st.columns([3, 2])
    left.plotly_chart(ui.news2_trend(v, site.tz), width="stretch", config={"displaylogo": False}, key="news2_trend")
    with right:
        scored = v[v["status"] == "scored"]
        if scored.empty:
            st.info("No complete observation set in the last 12 hours: no NEWS2 (never assumed normal).")
        else:
            last = scored.iloc[[-1]].assign(on_oxygen=lambda d: d["on_oxygen"].astype(bool))
            sub = news2_frame(last[list(PARAMETERS) + ["spo2_scale"]])
            vals = {p: last.iloc[0][p] for p in PARAMETERS}
            st.markdown(ui.risk_html(last.iloc[0]["news2_total"], last.iloc[0]["news2_risk"], size_px=18)
                        + f" &nbsp; at {last.iloc[0]['ts'].tz_convert(site.tz):%H:%M} · {last.iloc[0]['source']}",
                        unsafe_allow_html=True)
            st.dataframe(pd.DataFrame({"parameter": list(PARAMETERS), "value": [str(vals[p]) for p in PARAMETERS],
                                       "score": [int(sub.iloc[0][f"sub_{p}"]) for p in PARAMETERS]}),
                         hide_index=True, width="stretch")
        g = v[v["status"] == "glucose"]
        if len(g):
            st.metric("Capillary glucose", f"{g.iloc[-1]['glucose_mmol_l']:.1f} mmol/L",
                      help=f"at {g.iloc[-1]['ts'].tz_convert(site.tz):%H:%M}")
        bad = v[v["status"] == "impossible"]
        if len(bad):
            st.caption(f"{len(bad)} reading(s) rejected, never scored: " + "; ".join(bad["reason"].dropna().unique()[:3]))
    alarms = service.inbox(state.repo(), ward)
    mine = alarms[alarms["patient_id"] == patient]
    for _, a in mine.iterrows():
        st.markdown(f"{ui.badge_html(a['priority'])} **{ui.kind_text(a['kind'])}** — {a['message']} "
                    f"({ui.escalation_text(a)})", unsafe_allow_html=True)


vitals()
