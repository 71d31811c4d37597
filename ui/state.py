"""Process-wide resources (cached once per server process, shared by every browser tab) and the
per-refresh shared snapshot."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import streamlit as st

from core.config import Settings
from core.feeds.runner import FeedRunner
from core.site import Site, load_site
from core.snapshot import FloorSnapshot, build_floor_snapshot
from core.storage.repository import Repository


@st.cache_resource
def settings() -> Settings:
    return Settings.from_env()


@st.cache_resource
def site() -> Site:
    return load_site(settings().sample_dir)


@st.cache_resource
def repo() -> Repository:
    r = Repository.from_url(settings().db_url)
    r.create_schema()
    r.load_site(site())
    return r


@st.cache_resource
def feed() -> FeedRunner | None:
    """The built-in simulated hospital feed: started once per server process, not per tab."""
    cfg = settings()
    if cfg.feed != "sim":
        return None
    from core.feeds.simulator import HospitalSimulator
    from core.services import build_pipeline
    sim = HospitalSimulator(site(), seed=cfg.sim_seed)
    return FeedRunner(build_pipeline(site(), repo(), cfg), sim.step, tick_s=cfg.sim_tick_s, source_name="sim").start()


def now() -> datetime:
    return datetime.now(timezone.utc)


@st.cache_data(max_entries=64, show_spinner=False)
def _floor_snapshot(floor_id: str | None, show_identity: bool, bucket: int) -> FloorSnapshot:
    cfg = settings()
    return build_floor_snapshot(repo(), site(), floor_id, now(), stale_after_s=cfg.stale_after_s,
                                unknown_after_s=cfg.unknown_after_s, show_identity=show_identity)


def floor_snapshot(floor_id: str | None, show_identity: bool = True) -> FloorSnapshot:
    """One snapshot per floor per refresh interval, whatever the number of screens showing it."""
    bucket = int(time.time() // max(settings().refresh_s, 0.5))
    return _floor_snapshot(floor_id, show_identity, bucket)


def local(ts: datetime) -> datetime:
    return ts.astimezone(site().tz)
