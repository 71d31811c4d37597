"""Small builders shared by tests (not fixtures, so they read plainly at the call site)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from core.config import SAMPLE_DIR, Settings
from core.site import load_site

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)   # a weekday morning: day shift on duty
_SITE = None


def sample_site():
    global _SITE
    if _SITE is None:
        _SITE = load_site(SAMPLE_DIR)
    return _SITE


def run_feed(repo, site, ticks: int, *, start: datetime = T0, seed: int = 3, fault_rate: float = 0.0,
             settings: Settings | None = None):
    """Drive the simulator through the pipeline for `ticks` one-second ticks; returns the pipeline."""
    from core.feeds.simulator import HospitalSimulator
    from core.services import build_pipeline
    pipe = build_pipeline(site, repo, settings or Settings())
    sim = HospitalSimulator(site, seed=seed, fault_rate=fault_rate)
    for k in range(ticks):
        now = start + timedelta(seconds=k)
        pipe.process(sim.step(now), now)
    return pipe


def position_read(tag: str, ts: datetime, x: float, y: float, floor: str = "F1") -> dict:
    return {"ts": pd.Timestamp(ts), "tag_id": tag, "x_m": x, "y_m": y, "floor_id": floor}
