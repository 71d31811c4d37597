"""Small render helpers shared by pages."""
from __future__ import annotations

from datetime import datetime

import streamlit as st

from ui import state

DISCLAIMER = ("Wardsight is decision support, not a medical device. Locations come from tags and can be "
              "wrong or late; always confirm at the bedside and follow local escalation policy.")


def footer() -> None:
    st.divider()
    st.caption(f"⚕️ {DISCLAIMER}")


def updated(ts: datetime, extra: str = "") -> None:
    st.caption(f"updated {state.local(ts):%H:%M:%S} ({state.site().timezone}){extra}")


def feed_banner() -> None:
    """Say plainly when the feed is down or failing; a quiet map must not look like a calm ward."""
    runner = state.feed()
    cfg = state.settings()
    if runner is None:
        if cfg.feed == "none":
            st.info("No live feed in this process (WARDSIGHT_FEED=none): showing what the store holds.")
        elif cfg.feed == "mqtt":
            _ingest_banner()
        return
    if not runner.running:
        st.error("The simulated feed has stopped: positions are not updating.")
    elif runner.status.errors:
        st.warning(f"Feed errors: {runner.status.errors} (last: {runner.status.last_error})")


def _ingest_banner() -> None:
    """With WARDSIGHT_FEED=mqtt the ingest service writes the store: warn when it has gone quiet."""
    from core.models import to_ms
    stats = state.repo().feed_stats()
    last = stats["last_batch_ms"].max() if len(stats) else None
    if last is None or last != last:
        st.warning("Waiting for the MQTT ingest service: nothing has been stored yet "
                   "(`python -m core.feeds mqtt-ingest`).")
        return
    age_s = (to_ms(state.now()) - int(last)) / 1000
    if age_s > 30:
        st.error(f"The MQTT ingest service last stored reads {age_s:.0f} s ago: positions are not updating.")
