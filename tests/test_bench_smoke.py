"""Every benchmark runs end to end on tiny inputs (a smoke test: no timing is asserted here; the
numbers come from `python -m bench`). Also checks the one new public helper the benchmarks use,
`core.locate.BedIndex`, against a brute-force answer."""
from __future__ import annotations

import os

import numpy as np
import pytest

from bench.__main__ import BENCHES, main
from core.locate import BedIndex


@pytest.fixture
def isolated_app_state():
    """The pages bench points the app at its own temporary database: restore the environment and
    streamlit's process-wide caches afterwards so other page tests see their own database."""
    import streamlit as st
    saved = dict(os.environ)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("name", sorted(BENCHES), ids=sorted(BENCHES))
def test_bench_runs_on_tiny_inputs(name, isolated_app_state):
    module, _, quick = BENCHES[name]
    rows = __import__(module, fromlist=["run"]).run(**quick)
    assert rows, name
    for row in rows:
        assert row.path and row.ours and not row.ours.startswith("FAILED"), row
        assert row.verdict in {"PASS", "MISS", "info"}


def test_runner_prints_one_table(capsys, isolated_app_state):
    main(["--quick", "--only", "presence", "proximity"])
    out = capsys.readouterr().out
    header = [line for line in out.splitlines() if line.startswith("| hot path")]
    assert len(header) == 1
    assert "latest state per tag" in out and "proximity" in out


@pytest.mark.parametrize("seed", [1, 2, 3], ids=["s1", "s2", "s3"])
def test_bed_index_finds_exactly_the_pairs_a_double_loop_finds(seed):
    rng = np.random.default_rng(seed)
    bx, by = rng.uniform(0, 30, 80), rng.uniform(0, 20, 80)
    px, py = rng.uniform(0, 30, 40), rng.uniform(0, 20, 40)
    px[3] = np.nan                                            # a person without a position
    who, bed, dist = BedIndex([f"B{i}" for i in range(80)], bx, by).within(px, py, 2.5)
    d = np.hypot(px[:, None] - bx[None, :], py[:, None] - by[None, :])
    want = {(int(i), int(j)) for i, j in zip(*np.nonzero(d <= 2.5))}
    assert set(zip(who.tolist(), bed.tolist())) == want
    assert np.allclose(dist, d[who, bed])
    assert (np.diff(who) >= 0).all()                          # grouped by person


def test_bed_index_with_no_people_or_no_beds():
    empty = BedIndex([], [], [])
    assert empty.within([1.0], [1.0], 2.5)[0].size == 0
    assert BedIndex(["B"], [0.0], [0.0]).within([], [], 2.5)[0].size == 0
