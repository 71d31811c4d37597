"""Operations: how the wards ran over a period — alarm response, load and escalation; storage and
waste; devices and beds; hand hygiene and time at the bedside. Aggregates only, never per person."""
from datetime import timedelta

import pandas as pd
import streamlit as st

from ui import auth, render, state
from ui import ops_ui as ui

auth.require_page("operations")

site = state.site()
cfg = state.settings()
st.title("Operations")
minute = ui.now_minute()
today = minute.tz_convert(site.timezone).date()
first_allowed = today - timedelta(days=ui.HORIZON_DAYS - 1)

# ---- selectors
c1, c2, c3 = st.columns([1.2, 1.6, 2.2])
periods = {"Today": 1, "Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "Custom…": None}
period = c1.selectbox("Period", list(periods), index=1)
if periods[period] is None:
    picked = c2.date_input("From – to", (today - timedelta(days=13), today), min_value=first_allowed,
                           max_value=today)
    first_day, last_day = (picked[0], picked[-1]) if isinstance(picked, (tuple, list)) and picked else (today, today)
else:
    first_day, last_day = today - timedelta(days=periods[period] - 1), today
    c2.text_input("From – to", f"{first_day:%d %b} – {last_day:%d %b %Y}", disabled=True)
names = ui.ward_names()
wards = c3.multiselect("Wards", list(names), format_func=lambda w: names[w], placeholder="All wards")

if cfg.demo_mode:
    st.info("**Includes generated demo history.** Before this store's first record the figures are "
            "illustrative (seeded demo data), not real. Set WARDSIGHT_DEMO=0 to see only recorded data.",
            icon=":material/science:")
t = ui.tables(cfg.db_url, minute, cfg.demo_mode, first_day, last_day, tuple(sorted(wards)))
render.updated(minute.to_pydatetime(), f" · {first_day:%d %b} – {last_day:%d %b} (whole days, {site.timezone})")
with st.expander("Where these numbers come from"):
    for note in ui.notes(cfg.db_url, minute, cfg.demo_mode):
        st.caption(note)

tab_alarms, tab_store, tab_dev, tab_care = st.tabs(["Alarms", "Storage & waste", "Devices & beds",
                                                   "Hand hygiene & bedside"])

# ---- alarms
with tab_alarms:
    esc, load, hist = t["escalation"], t["alarm_load"], t["response_hist"]
    total = int(esc["alarms"].sum())
    ack = hist[hist["metric"] == "time_to_ack_s"].groupby("bucket_s")["count"].sum().sort_index()
    median_ack = ack.index[(ack.cumsum() >= ack.sum() / 2).to_numpy()][0] if ack.sum() else None
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Alarms", f"{total:,}")
    m2.metric("Median to ack", ui.bucket_label(median_ack) if median_ack is not None else "—",
              help="Median time from raised to acknowledged (upper edge of its histogram bucket).")
    m3.metric("Escalated", f"{esc['escalated'].sum() / total:.0%}" if total else "—")
    days = max(1, (last_day - first_day).days + 1)
    m4.metric("Per bed per day", f"{total / (load['beds'].sum() * days):.2f}" if load["beds"].sum() else "—",
              help="Alarms per bed per day over the period and wards shown.")
    if total == 0:
        st.info("No alarms in this period.")
    else:
        split = st.radio("Compare response times by", ["kind", "ward_id", "shift"], horizontal=True,
                         format_func={"kind": "alarm kind", "ward_id": "ward", "shift": "shift"}.get)
        r1, r2 = st.columns(2)
        r1.plotly_chart(ui.response_figure(hist, "time_to_ack_s", split, "Time to acknowledge"), width="stretch")
        r2.plotly_chart(ui.response_figure(hist, "time_to_resolve_s", split, "Time to resolve"), width="stretch")
        resp = t["alarm_response"]
        st.dataframe(pd.DataFrame({
            "kind": resp["kind"].map(ui.kind_label), "ward": resp["ward_id"], "shift": resp["shift"],
            "measure": resp["metric"].map({"time_to_ack_s": "acknowledge", "time_to_resolve_s": "resolve"}),
            "alarms": resp["alarms"], "pending": resp["pending"], "mean": resp["mean_s"].map(ui.duration_text),
            "median": resp["median_le_s"].map(ui.bucket_label), "90th percentile": resp["p90_le_s"].map(ui.bucket_label)}),
            hide_index=True, width="stretch", height=260)
        st.caption("Median and 90th percentile come from the daily rollup's histogram: the value is at most the "
                   "bucket edge shown. Pending = not yet acknowledged / resolved.")
        e1, e2 = st.columns(2)
        e1.plotly_chart(ui.escalation_figure(esc), width="stretch")
        e2.plotly_chart(ui.load_figure(load), width="stretch")
        st.plotly_chart(ui.daily_figure(t["daily_alarms"]), width="stretch")

# ---- storage and waste
with tab_store:
    x = t["excursions"]
    s1, s2, s3, s4 = st.columns(4)
    s1.metric("Storage excursions", int(x["excursions"].sum()))
    s2.metric("Out of range", ui.duration_text(x["duration_s"].sum()) if len(x) else "—")
    s3.metric("Drugs affected", int(x["drugs_affected"].sum()))
    s4.metric("Worst MKT", f"{x['max_mkt_c'].max():.1f} °C" if x["max_mkt_c"].notna().any() else "—",
              help="Highest mean kinetic temperature of an excursion (USP <1160>).")
    if len(x):
        st.dataframe(pd.DataFrame({"location": x["location_id"], "excursions": x["excursions"],
                                   "total": x["duration_s"].map(ui.duration_text),
                                   "longest": x["max_duration_s"].map(ui.duration_text),
                                   "drugs affected": x["drugs_affected"], "worst MKT (°C)": x["max_mkt_c"].round(1)}),
                     hide_index=True, width="stretch")
    else:
        st.info("No storage excursions began in this period.")
    w = t["waste"]
    if w["disposals"].sum() == 0 and w["bins_open"].sum() == 0:
        st.info("No disposal or bin records in this period.")
    else:
        w1, w2 = st.columns([2, 1])
        w1.plotly_chart(ui.wrong_bin_figure(w), width="stretch")
        w2.metric("Overdue bins", int(w["overdue_bins"].sum()), help="Bins older than their category's storage limit "
                  "(WHO 2014 via the waste rules) at some moment of the period without being collected.")
        w2.metric("Bins in use", int(w["bins_open"].sum()))
        w2.metric("Disposals", f"{int(w['disposals'].sum()):,}")

# ---- devices and beds
with tab_dev:
    util, par = t["device_utilisation"], t["par_levels"]
    if util.empty:
        st.info("No device status intervals in this period.")
    else:
        st.plotly_chart(ui.utilisation_figure(util), width="stretch")
    as_of = par["as_of"].iloc[0] if len(par) else None
    st.subheader("Par levels")
    short = par[par["warning"]]
    for row in short.itertuples(index=False):
        st.warning(f"{names.get(row.ward_id, row.ward_id)}: {row.idle} idle {row.device_type.replace('_', ' ')}"
                   f"{'s' if row.idle != 1 else ''} (par {row.par}) — short by {row.shortage}.",
                   icon=":material/warning:")
    if len(par) and short.empty:
        st.success("Every ward has at least its par level of idle devices.")
    st.dataframe(pd.DataFrame({"ward": par["ward_id"], "device": par["device_type"].str.replace("_", " "),
                               "par": par["par"], "idle": par["idle"], "in use": par["in_use"],
                               "cleaning": par["cleaning"], "short by": par["shortage"]}),
                 hide_index=True, width="stretch")
    if as_of is not None:
        st.caption(f"Counts as of {state.local(as_of.to_pydatetime()):%d %b %H:%M}. Devices not seen at a bed, in an "
                   "equipment store or in a dirty utility room at that moment are not counted.")
    st.plotly_chart(ui.occupancy_figure(t["occupancy"]), width="stretch")

# ---- hand hygiene and bedside
with tab_care:
    hh, bed = t["hand_hygiene"], t["bedside"]
    if hh.empty:
        st.info("No hand-hygiene opportunities (staff entering or leaving patient rooms) in this period.")
    else:
        st.plotly_chart(ui.by_ward_shift_figure(hh, "compliance", "Hand-hygiene compliance", "compliant", pct=True),
                        width="stretch")
        st.caption("An opportunity is a staff entry to or exit from a patient room; it is compliant when the same "
                   "person used a dispenser within 30 s of it.")
    if bed.empty:
        st.info("No bedside sessions in this period.")
    else:
        bed = bed.assign(min_per_staff_shift=bed["bedside_s"] / bed["staff_shifts"] / 60)
        b1, b2 = st.columns(2)
        b1.plotly_chart(ui.by_ward_shift_figure(bed, "min_per_staff_shift", "Time at the bedside per staff shift",
                                                "minutes", pct=False), width="stretch")
        b2.plotly_chart(ui.by_ward_shift_figure(bed.assign(mean_min=bed["mean_session_s"] / 60), "mean_min",
                                                "Mean bedside visit", "minutes", pct=False), width="stretch")
    st.caption("Aggregated per ward and shift. Wardsight shows no individual staff figures here: "
               "individual staff trails are not available to any role by default.")

# ---- export
st.subheader("Export")
ui.export_block({k: v for k, v in t.items()}, object_type="operations_table", object_id_prefix="",
                detail={"from": str(first_day), "to": str(last_day), "wards": sorted(wards) or "all"}, key="ops")
