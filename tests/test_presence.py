from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.models import PresenceState, Presence
from core.presence import PresenceTracker, latest_per_tag, presence_state
from tests.helpers import T0

TAGS = pd.DataFrame({"tag_id": ["A", "B"], "entity_id": ["eA", "eB"]})


def located(rows):
    """rows: (tag, seconds after T0, room, bed)"""
    return pd.DataFrame({"ts": [pd.Timestamp(T0 + timedelta(seconds=s)) for _, s, _, _ in rows],
                         "tag_id": [t for t, *_ in rows], "floor_id": "F1",
                         "room_id": [r for _, _, r, _ in rows], "bed_id": [b for *_, b in rows],
                         "x_m": 1.0, "y_m": 2.0})


def test_first_read_places_a_tag_at_once():
    tr = PresenceTracker(TAGS, change_reads=3)
    upd = tr.update(located([("A", 0, "R1", None)]))
    assert upd.changes[["tag_id", "room_id"]].values.tolist() == [["A", "R1"]]


@pytest.mark.parametrize("sequence,final_room,changes", [
    (["R1", "R2", "R1", "R1"], "R1", 1),
    (["R1", "R2", "R2", "R1"], "R1", 1),
    (["R1", "R2", "R2", "R2"], "R2", 2),
    (["R1", "R2", "R3", "R2", "R2"], "R1", 1),
    (["R1", "R2", "R2", "R2", "R1", "R1", "R1"], "R1", 3),
], ids=["one-stray", "two-strays", "three-agree", "interrupted", "there-and-back"])
def test_hysteresis_needs_n_consecutive_reads(sequence, final_room, changes):
    tr = PresenceTracker(TAGS, change_reads=3)
    n = 0
    for i, room in enumerate(sequence):
        n += len(tr.update(located([("A", i, room, None)])).changes)
    assert n == changes
    assert tr.snapshot().set_index("tag_id").at["A", "room_id"] == final_room


def test_batch_with_many_reads_per_tag_equals_one_by_one():
    seq = [("A", i, r, None) for i, r in enumerate(["R1", "R2", "R2", "R2", "R3", "R2"])] + \
          [("B", i, r, None) for i, r in enumerate(["R5", "R5", "R6", "R6", "R6", "R6"])]
    one = PresenceTracker(TAGS, 3)
    for row in seq:
        one.update(located([row]))
    batch = PresenceTracker(TAGS, 3)
    batch.update(located(seq[::-1]))             # arrival order must not matter within a batch
    cols = ["tag_id", "room_id", "since_ms", "last_seen_ms"]
    assert one.snapshot()[cols].equals(batch.snapshot()[cols])


def test_since_is_when_it_changed_last_seen_when_reported():
    tr = PresenceTracker(TAGS, change_reads=1)
    tr.update(located([("A", 0, "R1", None)]))
    tr.update(located([("A", 30, "R1", None)]))
    row = tr.snapshot().set_index("tag_id").loc["A"]
    assert row["since_ms"] == int(T0.timestamp() * 1000)
    assert row["last_seen_ms"] == int(T0.timestamp() * 1000) + 30_000


def test_late_read_does_not_move_a_tag_back_in_time():
    tr = PresenceTracker(TAGS, change_reads=1)
    tr.update(located([("A", 10, "R1", None)]))
    upd = tr.update(located([("A", 5, "R9", None)]))
    assert upd.changes.empty
    assert tr.snapshot().set_index("tag_id").at["A", "room_id"] == "R1"


def test_silent_tag_expires_to_unknown_with_one_change():
    tr = PresenceTracker(TAGS, change_reads=1)
    tr.update(located([("A", 0, "R1", "R1-1")]))
    now_ms = int(T0.timestamp() * 1000) + 301_000
    lost = tr.expire(now_ms, unknown_after_s=300)
    assert lost["room_id"].tolist() == [None] and lost["ts_ms"].tolist() == [int(T0.timestamp() * 1000) + 300_000]
    assert tr.expire(now_ms + 10_000, 300).empty


@pytest.mark.parametrize("age_s,state", [(0, "present"), (30, "present"), (31, "stale"), (300, "stale"),
                                         (301, "unknown"), (np.nan, "unknown")],
                         ids=["fresh", "edge-present", "stale", "edge-stale", "unknown", "never"])
def test_presence_state_bands(age_s, state):
    now_ms = 1_000_000_000
    got = presence_state(np.array([now_ms - age_s * 1000]), now_ms, 30, 300)
    assert got[0] == state


def test_presence_dataclass_agrees_with_vectorised_state():
    p = Presence("A", "eA", "F1", "R1", None, T0, T0)
    for s in (5, 45, 400):
        scalar = p.state(T0 + timedelta(seconds=s), 30, 300)
        vec = presence_state(np.array([T0.timestamp() * 1000]), int((T0.timestamp() + s) * 1000), 30, 300)[0]
        assert scalar.value == vec
    assert p.state(T0, 30, 300) is PresenceState.PRESENT


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 50)), min_size=1, max_size=200))
def test_latest_per_tag_matches_naive(rows):
    df = pd.DataFrame({"tag_id": [t for t, _ in rows], "ts": [s for _, s in rows], "i": range(len(rows))})
    got = latest_per_tag(df).set_index("tag_id")["i"].to_dict()
    naive = {}
    for t, s, i in zip(df["tag_id"], df["ts"], df["i"]):
        if t not in naive or s >= df.at[naive[t], "ts"]:
            naive[t] = i
    assert got == naive
