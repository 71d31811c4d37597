"""Readers & infrastructure: silent readers, tags with a low battery, reader clock skew, ingest rate and lag."""
import pandas as pd
import plotly.express as px
import streamlit as st

from core import health
from ui import auth, render, state

auth.require_page("infrastructure")

cfg = state.settings()
site = state.site()
st.title("Readers & infrastructure")
render.feed_banner()


def clock(ms: pd.Series) -> pd.Series:
    """Epoch ms → local HH:MM:SS ("never" when missing)."""
    t = pd.to_datetime(ms, unit="ms", utc=True).dt.tz_convert(site.tz).dt.strftime("%H:%M:%S")
    return t.fillna("never")


def duration(seconds: pd.Series) -> pd.Series:
    s = seconds.astype(float)
    text = (s / 60).round(0).astype("Int64").astype("string") + " min"
    return text.where(s >= 120, s.round(0).astype("Int64").astype("string") + " s").fillna("never heard")


@st.fragment(run_every=max(cfg.refresh_s, 5.0))
def board() -> None:
    now = state.now()
    rep = health.report(state.repo(), site, now, silent_after_s=cfg.reader_silent_s, low_battery_pct=cfg.low_battery_pct)
    last_min = rep.rate.tail(1)
    c = st.columns(4)
    never = int(rep.readers["never"].sum())
    c[0].metric("Silent antennas", f"{rep.silent_count}/{len(rep.readers)}",
                help=f"heard before, but no read for more than {cfg.reader_silent_s:.0f} s (WARDSIGHT_READER_SILENT_S)")
    c[1].metric("Low batteries", len(rep.low_battery), help=f"below {cfg.low_battery_pct:.0f} % (WARDSIGHT_LOW_BATTERY_PCT)")
    c[2].metric("Reads, last minute", f"{int(last_min['reads'].sum()):,}" if len(last_min) else "0")
    lag = last_min["lag_mean_ms"].iloc[0] if len(last_min) else float("nan")
    c[3].metric("Ingest lag", "–" if pd.isna(lag) else f"{lag / 1000:.1f} s",
                help="server time at ingest minus the read's own timestamp (network, batching, reader clock)")
    render.updated(now)

    if never:
        st.caption(f"{never} antennas have never been heard since this store began — often bed antennas with no "
                   "passive tag nearby yet; check their configuration if that persists.")
    st.subheader(f"Silent readers (no read for more than {cfg.reader_silent_s:.0f} s)")
    silent = health.silent_by_reader(rep.readers)
    if silent.empty:
        st.success("Every reader antenna reported recently.")
    else:
        st.dataframe(pd.DataFrame({"reader": silent["reader_id"], "silent antennas": silent["antennas"],
                                   "floor": silent["floor_id"], "room": silent["room_id"],
                                   "last read": clock(silent["last_read_ms"]), "silent for": duration(silent["silent_s"])}),
                     hide_index=True, width="stretch", height=min(400, 38 + 35 * len(silent)))

    st.subheader(f"Tags with a battery below {cfg.low_battery_pct:.0f} %")
    low = rep.low_battery
    if low.empty:
        st.success("No tag reports a low battery.")
    else:
        short = low["entity_id"].map(state.site().entities.set_index("entity_id")["short_name"])
        worn_by = low["name"].where((low["kind"] != "patient") | auth.can("see_patient_identity"), short)
        st.dataframe(pd.DataFrame({"tag": low["tag_id"], "worn by / fixed to": worn_by, "kind": low["kind"],
                                   "battery %": low["battery_pct"].round(0), "reported": clock(low["reported_ms"])}),
                     hide_index=True, width="stretch")

    st.subheader("Reader clocks (last 15 min)")
    sk = rep.clock
    if sk.empty:
        st.info("No reads in the last 15 minutes.")
    else:
        st.caption("Read timestamp minus server time at ingest, per reader: around zero or slightly negative is "
                   "healthy (transport and batching); a bar far from the others is a reader clock to fix. "
                   "Reads more than 30 s ahead are quarantined and counted on the right.")
        shown = sk.dropna(subset=["skew_mean_ms"])
        fig = px.bar(shown, x="reader_id", y=shown["skew_mean_ms"] / 1000,
                     error_y=(shown["skew_max_ms"] - shown["skew_mean_ms"]) / 1000,
                     error_y_minus=(shown["skew_mean_ms"] - shown["skew_min_ms"]) / 1000,
                     labels={"reader_id": "reader", "y": "skew (s)"}, height=320)
        fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(fig, width="stretch", key="skew")
        st.dataframe(pd.DataFrame({"reader": sk["reader_id"], "reads": sk["reads"],
                                   "mean skew (s)": (sk["skew_mean_ms"] / 1000).round(2),
                                   "min (s)": (sk["skew_min_ms"] / 1000).round(2), "max (s)": (sk["skew_max_ms"] / 1000).round(2),
                                   "quarantined for skew": sk["quarantined_skew"]}), hide_index=True, width="stretch")

    st.subheader("Ingest rate and lag (last hour)")
    rate = rep.rate
    if rate.empty:
        st.info("No reads ingested in the last hour.")
    else:
        per_min = rate.assign(minute=pd.to_datetime(rate["minute_ms"], unit="ms", utc=True).dt.tz_convert(site.tz),
                              lag_s=rate["lag_mean_ms"] / 1000)
        fig = px.line(per_min, x="minute", y="reads", markers=True, labels={"reads": "reads per minute"}, height=260)
        fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(fig, width="stretch", key="rate")
    feeds = rep.feeds
    if len(feeds):
        st.dataframe(pd.DataFrame({"feed": feeds["source"], "accepted": feeds["accepted"], "quarantined": feeds["quarantined"],
                                   "last batch": clock(feeds["last_batch_ms"]),
                                   "last lag (s)": (feeds["last_lag_ms"].astype(float) / 1000).round(2)}),
                     hide_index=True, width="stretch")


board()
render.footer()
