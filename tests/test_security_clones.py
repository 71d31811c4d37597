"""Clone detection: spoofed copies are caught; normal walking with position noise never is."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.errors import InvalidInput
from core.security.clones import EVENT_COLUMNS, FLOOR_TOO_FAST, IMPOSSIBLE_SPEED, SIMULTANEOUS, detect_clones

T0 = pd.Timestamp(datetime(2025, 3, 4, 8, 0, tzinfo=timezone.utc))


def frame(rows):
    """rows: (t_s, tag, floor, x, y, room)."""
    df = pd.DataFrame(rows, columns=["t_s", "tag_id", "floor_id", "x_m", "y_m", "room_id"])
    df.insert(0, "ts", T0 + pd.to_timedelta(df.pop("t_s"), unit="s"))
    return df


def test_clone_alternating_between_distant_rooms_is_flagged():
    rows = []
    for i in range(10):   # genuine badge in bay A, a copy in the sluice 40 m away, reporting in turn
        rows.append((2 * i, "T1", "F1", 5.0, 5.0, "bayA"))
        rows.append((2 * i + 1, "T1", "F1", 45.0, 5.0, "sluice"))
    events = detect_clones(frame(rows))
    assert list(events.columns) == EVENT_COLUMNS
    assert len(events) == 19 and set(events["reason"]) == {IMPOSSIBLE_SPEED}
    first = events.iloc[0]
    assert (first["place_a"], first["place_b"], first["distance_m"], first["dt_s"]) == ("bayA", "sluice", 40.0, 1.0)
    assert first["speed_mps"] == pytest.approx(40.0)


@pytest.mark.parametrize("rows, reason", [
    ([(0, "T1", "F1", 0, 0, "bay1"), (0.3, "T1", "F1", 30, 0, "bay9")], SIMULTANEOUS),
    ([(0, "T1", "F1", 0, 0, "bay1"), (0, "T1", "F1", 30, 0, "bay9")], SIMULTANEOUS),
    ([(0, "T1", "F1", 0, 0, "bay1"), (5, "T1", "F1", 30, 0, "bay9")], IMPOSSIBLE_SPEED),
    ([(0, "T1", "F1", 0, 0, "bay1"), (3, "T1", "F2", 0, 0, "ward2")], FLOOR_TOO_FAST),
], ids=["simultaneous", "same-instant", "too-fast", "floor-jump"])
def test_impossible_pairs(rows, reason):
    events = detect_clones(frame(rows))
    assert events["reason"].tolist() == [reason]


@pytest.mark.parametrize("rows", [
    [(0, "T1", "F1", 0, 0, "bay1"), (20, "T1", "F1", 30, 0, "bay9")],           # 1.5 m/s walk
    [(0, "T1", "F1", 0, 0, "bay1"), (0.2, "T1", "F1", 4, 0, "bay2")],           # boundary flicker: within slack
    [(0, "T1", "F1", 0, 0, "bay1"), (60, "T1", "F2", 0, 0, "ward2")],           # lift ride
    [(0, "T1", "F1", 0, 0, "bay1"), (0.5, "T2", "F1", 40, 0, "bay9")],          # different tags
    [(0, "T1", "F1", np.nan, np.nan, "bay1"), (1, "T1", "F1", 40, 0, "bay9")],  # reader read: no coords
], ids=["walking", "zone-flicker", "lift", "two-tags", "no-coordinates"])
def test_plausible_pairs_not_flagged(rows):
    assert detect_clones(frame(rows)).empty


def test_floor_levels_scale_lift_time():
    rows = [(0, "T1", "F1", 0, 0, "a"), (15, "T1", "F4", 0, 0, "b")]
    assert detect_clones(frame(rows)).empty
    assert len(detect_clones(frame(rows), floor_levels={"F1": 1, "F4": 4})) == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), speed_mps=st.floats(0.0, 2.0), n_tags=st.integers(1, 4))
def test_normal_walking_with_noise_never_flagged(seed, speed_mps, n_tags):
    """People walking ≤ 2 m/s, read at ~1 Hz (jittered) with 0.5 m Gaussian position noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for tag in range(n_tags):
        n = 300
        t_s = np.cumsum(rng.uniform(0.7, 1.3, n))
        heading = np.cumsum(rng.normal(0, 0.4, n))                    # meandering path
        step = speed_mps * np.diff(t_s, prepend=0.0)
        x, y = np.cumsum(step * np.cos(heading)), np.cumsum(step * np.sin(heading))
        parts.append(pd.DataFrame({"t_s": t_s, "tag_id": f"T{tag}", "floor_id": "F1",
                                   "x_m": x + rng.normal(0, 0.5, n), "y_m": y + rng.normal(0, 0.5, n),
                                   "room_id": np.where(x > 10, "bay2", "bay1")}))
    reads = frame(pd.concat(parts).sample(frac=1.0, random_state=seed % 2**31).to_numpy().tolist())
    assert detect_clones(reads).empty


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), gap_m=st.floats(25.0, 80.0))
def test_copy_far_away_always_flagged(seed, gap_m):
    rng = np.random.default_rng(seed)
    t_s = np.arange(60.0)
    x = np.where(t_s % 2 == 0, 0.0, gap_m) + rng.normal(0, 0.5, 60)
    reads = frame([(t, "T1", "F1", xi, rng.normal(0, 0.5), "far" if xi > 10 else "near") for t, xi in zip(t_s, x)])
    assert len(detect_clones(reads)) == 59


@pytest.mark.parametrize("bad", [
    pd.DataFrame({"ts": [T0], "tag_id": ["T1"]}),
    pd.DataFrame({"ts": [datetime(2025, 1, 1)], "tag_id": ["T1"], "floor_id": ["F1"], "x_m": [0.0],
                  "y_m": [0.0], "room_id": ["a"]}),
], ids=["missing-columns", "naive-ts"])
def test_bad_input_refused(bad):
    with pytest.raises(InvalidInput):
        detect_clones(bad)


def test_large_batch_is_vectorised_and_quick():
    import time
    rng = np.random.default_rng(1)
    n = 200_000
    reads = pd.DataFrame({"ts": T0 + pd.to_timedelta(np.sort(rng.uniform(0, 3600, n)), unit="s"),
                          "tag_id": rng.choice([f"T{i}" for i in range(500)], n), "floor_id": "F1",
                          "x_m": rng.uniform(0, 1, n), "y_m": rng.uniform(0, 1, n), "room_id": "bay"})
    start = time.perf_counter()
    assert detect_clones(reads).empty
    assert time.perf_counter() - start < 2.0
