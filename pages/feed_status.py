"""Feed status: what came in, what was quarantined and why."""
import pandas as pd
import streamlit as st

from core.models import to_ms
from ui import auth, render, state

auth.require_page("feed_status")

repo = state.repo()
runner = state.feed()
st.title("Feed status")
render.feed_banner()


@st.fragment(run_every=5)
def status() -> None:
    now = state.now()
    stats = repo.feed_stats()
    c = st.columns(4)
    acc = int(stats["accepted"].sum()) if len(stats) else 0
    qua = int(stats["quarantined"].sum()) if len(stats) else 0
    c[0].metric("Reads accepted", f"{acc:,}")
    c[1].metric("Reads quarantined", f"{qua:,}", help="malformed, unknown or impossible reads, kept with a reason")
    if runner is not None:
        c[2].metric("Feed ticks", f"{runner.status.ticks:,}")
        c[3].metric("Last tick took", f"{runner.status.last_tick_ms:.0f} ms")
    render.updated(now)
    st.subheader("Quarantine by reason (last 24 h)")
    summary = repo.quarantine_summary(since_ms=to_ms(now) - 86_400_000)
    if summary.empty:
        st.success("Nothing quarantined in the last 24 h.")
    else:
        summary["last"] = pd.to_datetime(summary["last_ms"], unit="ms", utc=True).dt.tz_convert(state.site().tz).dt.strftime("%H:%M:%S")
        st.dataframe(summary[["source", "reason", "count", "last"]], hide_index=True, width="stretch")
    st.subheader("Most recent quarantined rows")
    recent = repo.recent_quarantine(20)
    if len(recent):
        recent["received"] = pd.to_datetime(recent["received_ms"], unit="ms", utc=True).dt.tz_convert(state.site().tz).dt.strftime("%H:%M:%S")
        st.dataframe(recent[["received", "source", "reason", "raw"]], hide_index=True, width="stretch")


status()
