"""Drug storage: per fridge / freezer / cupboard the temperature with its allowed band and
excursions shaded, humidity, mean kinetic temperature for controlled room temperature, the drugs
stored there and its current alarms."""
from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from core.alarms import service
from core.alarms.drug_storage import excursion_episodes, mean_kinetic_temperature
from core.alarms.rules import DEFAULT_RULES
from ui import alarms_ui as ui
from ui import auth, render, state

auth.require_page("drug_storage")
site, cfg = state.site(), state.settings()
units = ui.clinical().storage_units
wards = site.wards.set_index("ward_id")["name"]

st.title("Drug storage")
render.feed_banner()
c1, c2 = st.columns([2, 1])
ward = c1.selectbox("Ward", list(wards.index), format_func=wards.get, key="ds_ward")
hours = c2.select_slider("Show the last", [1, 3, 6, 12, 24], value=3, format_func=lambda h: f"{h} h", key="ds_hours")


def temperature_chart(loc, series, episodes):
    rule = DEFAULT_RULES.storage[loc["storage_class"]]
    fig = go.Figure()
    # allowed band (USP / CDC limits of the unit's storage class, core.alarms.rules)
    fig.add_hrect(y0=rule.low_c, y1=rule.high_c, fillcolor="rgba(46,125,50,0.12)", line_width=0,
                  annotation_text=f"allowed {rule.low_c:g} to {rule.high_c:g} °C", annotation_position="top left")
    for _, e in episodes.iterrows():
        fig.add_vrect(x0=e["start"].tz_convert(site.tz), x1=e["end"].tz_convert(site.tz),
                      fillcolor="rgba(176,0,32,0.15)", line_width=0)
    if len(series):
        fig.add_trace(go.Scatter(x=series["ts"].dt.tz_convert(site.tz), y=series["temp_c"], mode="lines",
                                 name="temperature °C", line=dict(color="#003f7f", width=2)))
        door = series[series["door_open"].fillna(0).astype(bool)]
        if len(door):
            # a strip under the allowed band, so the marks never hide the temperature line
            fig.add_trace(go.Scatter(x=door["ts"].dt.tz_convert(site.tz), y=[rule.low_c - 0.8] * len(door), mode="markers",
                                     name="door open", marker=dict(symbol="square", size=6, color="#E69F00")))
    if len(episodes):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="excursion (shaded)",
                                 marker=dict(symbol="square", size=12, color="rgba(176,0,32,0.35)")))
    fig.update_layout(height=280, margin=dict(l=4, r=4, t=10, b=30), yaxis_title="°C",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def humidity_chart(series):
    fig = go.Figure(go.Scatter(x=series["ts"].dt.tz_convert(site.tz), y=series["rh_pct"], mode="lines",
                               line=dict(color="#56B4E9"), name="RH %"))
    # WHO good storage practice: humidity <= 60 % (standards §2.3 [V])
    fig.add_hline(y=60, line_dash="dash", line_color="#B00020", annotation_text="60 % RH")
    fig.update_layout(height=150, margin=dict(l=4, r=4, t=6, b=20), yaxis_title="RH %", showlegend=False)
    return fig


@st.fragment(run_every=max(cfg.refresh_s, 5.0))
def locations() -> None:
    now = state.now()
    render.updated(now)
    alarms = service.inbox(state.repo(), ward)
    drugs = service.drug_positions(state.repo(), ui.clinical())
    for _, loc in units[units["ward_id"] == ward].iterrows():
        series = service.env_series(state.repo(), loc["location_id"], now - timedelta(hours=hours))
        held = drugs[drugs["location_id"] == loc["location_id"]]
        episodes = excursion_episodes(series.assign(location_id=loc["location_id"]), units, held) if len(series) \
            else series.iloc[:0].assign(start=None, end=None)
        mine = alarms[alarms["location_id"] == loc["location_id"]]
        with st.container(border=True):
            st.subheader(f"{loc['name']} · {DEFAULT_RULES.storage[loc['storage_class']].label}")
            left, right = st.columns([3, 2])
            with left:
                st.plotly_chart(temperature_chart(loc, series, episodes), width="stretch",
                                config={"displaylogo": False}, key=f"t-{loc['location_id']}")
                if len(series) and series["rh_pct"].notna().any():
                    st.plotly_chart(humidity_chart(series), width="stretch", config={"displaylogo": False},
                                    key=f"h-{loc['location_id']}")
            with right:
                last = series.iloc[-1] if len(series) else None
                m1, m2, m3 = st.columns(3)
                m1.metric("Now", f"{last['temp_c']:.1f} °C" if last is not None else "no data")
                m2.metric("Humidity", f"{last['rh_pct']:.0f} %" if last is not None and last["rh_pct"] == last["rh_pct"] else "—")
                if loc["storage_class"] == "crt" and len(series):
                    # USP <1160> mean kinetic temperature over the shown period; limit 25 °C (standards §2.1 [R])
                    m3.metric("MKT", f"{mean_kinetic_temperature(series['temp_c']):.1f} °C", help="limit 25 °C")
                else:
                    m3.metric("Excursions", len(episodes))
                for _, a in mine.iterrows():
                    st.markdown(f"{ui.badge_html(a['priority'])} **{ui.kind_text(a['kind'])}** — {a['message']}",
                                unsafe_allow_html=True)
                    for line in ui.extras(a):
                        st.caption(line)
                if mine.empty:
                    st.caption(":material/check_circle: no open alarm")
                st.dataframe(held[["name", "storage_class", "protect_from_light"]], hide_index=True, width="stretch",
                             height=min(250, 36 + 35 * len(held)),
                             column_config={"name": "drugs stored here", "protect_from_light": "protect from light"})
    misplaced = alarms[alarms["kind"] == "storage.drug_misplaced"]
    if len(misplaced):
        st.warning("Drugs in an unsuitable place: " + "; ".join(misplaced["message"]))


locations()
