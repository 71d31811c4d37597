"""Tests for core.positioning (RSSI positioning) and core.feeds.mbd (Danis et al. BLE dataset files)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.feeds.mbd import DatasetFormatError, read_dev, read_mbd, read_occ
from core.positioning import (OccupancyGrid, PathLossModel, PositioningError, calibrate_p0,
                              estimate_positions, estimate_positions_with_report,
                              nearest_reader_positions, validate_reads, weighted_centroid_positions)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
# 10 m x 10 m room: a reader in each corner and one in the middle, at head height.
READERS = pd.DataFrame({"reader_id": ["r1", "r2", "r3", "r4", "r5"],
                        "x_m": [0.0, 10.0, 0.0, 10.0, 5.0], "y_m": [0.0, 0.0, 10.0, 10.0, 5.0]})
LOW_NOISE = PathLossModel(p0_dbm=-59.0, exponent=2.0, sigma_db=0.3, reader_bias_db=0.0)


def synth_reads(path_xy: np.ndarray, model: PathLossModel, reads_per_reader: int = 3, noise_db: float = 0.0,
                seed: int = 0, tag_id: str = "tag-1", readers: pd.DataFrame = READERS) -> pd.DataFrame:
    """Reads of one tag at path_xy[i] during second i, from every reader, path loss plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (x, y) in enumerate(path_xy):
        d = np.hypot(readers["x_m"].to_numpy() - x, readers["y_m"].to_numpy() - y)
        for k in range(reads_per_reader):
            rssi = model.p0_dbm - 10 * model.exponent * np.log10(d) + rng.normal(0, noise_db, len(d))
            ts = T0 + timedelta(seconds=i + (k + 0.5) / (reads_per_reader + 1))
            rows += [(ts, tag_id, rid, float(r)) for rid, r in zip(readers["reader_id"], rssi)]
    return pd.DataFrame(rows, columns=["ts", "tag_id", "reader_id", "rssi_dbm"])


def errors_at_windows(positions: pd.DataFrame, path_xy: np.ndarray) -> np.ndarray:
    second = ((positions["ts"] - pd.Timestamp(T0)).dt.total_seconds()).astype(int).to_numpy()
    return np.hypot(positions["x_m"].to_numpy() - path_xy[second, 0],
                    positions["y_m"].to_numpy() - path_xy[second, 1])


# ----------------------------------------------------------------------------- accuracy

@pytest.mark.parametrize("xy", [(3.13, 6.71), (7.42, 2.28), (5.9, 5.05)], ids=["upper-left", "lower-right", "centre"])
def test_noiseless_path_loss_recovers_a_still_tag_within_centimetres(xy):
    path = np.tile(xy, (4, 1))
    reads = synth_reads(path, LOW_NOISE)
    positions = estimate_positions(reads, READERS, model=LOW_NOISE, grid_step_m=0.05)
    assert len(positions) == 4
    assert errors_at_windows(positions, path).max() < 0.05


def test_noisy_walk_has_bounded_error():
    t = np.arange(60)
    path = np.column_stack([1.5 + 7 * (t / 59), 2 + 6 * np.abs(np.sin(t / 12))])  # ~0.2 m/s
    model = PathLossModel(p0_dbm=-59.0)
    reads = synth_reads(path, model, reads_per_reader=2, noise_db=5.0, seed=7)
    positions = estimate_positions(reads, READERS, model=model)
    errors = errors_at_windows(positions, path)
    assert len(positions) == 60
    assert np.median(errors) < 1.5
    assert errors.max() < 4.0


def test_estimates_stay_inside_the_walkable_polygon():
    # An L-shaped corridor: the tag walks its lower leg; the blocked square is never reported.
    walkable = shapely.Polygon([(0, 0), (10, 0), (10, 2.5), (2.5, 2.5), (2.5, 10), (0, 10)])
    path = np.column_stack([np.linspace(1, 9, 30), np.full(30, 1.2)])
    model = PathLossModel(p0_dbm=-59.0)
    reads = synth_reads(path, model, noise_db=6.0, seed=3)
    positions = estimate_positions(reads, READERS, model=model, walkable=walkable)
    inside = shapely.contains_xy(walkable.buffer(0.2), positions["x_m"], positions["y_m"])
    assert inside.all()


def test_occupancy_grid_constrains_like_a_polygon():
    walkable = np.zeros((21, 21), bool)
    walkable[:, :4] = True                       # only y <= 1.5 m is walkable (0.5 m cells)
    grid = OccupancyGrid(0.0, 0.0, 0.5, walkable)
    path = np.column_stack([np.linspace(1, 9, 20), np.full(20, 1.0)])
    reads = synth_reads(path, PathLossModel(p0_dbm=-59.0), noise_db=6.0, seed=4)
    positions = estimate_positions(reads, READERS, model=PathLossModel(p0_dbm=-59.0), walkable=grid)
    assert grid.is_walkable(positions["x_m"], positions["y_m"]).all()


def test_single_reader_in_a_window_still_yields_an_estimate_near_it():
    reads = pd.DataFrame({"ts": [T0 + timedelta(seconds=0.2), T0 + timedelta(seconds=0.6)],
                          "tag_id": ["tag-1"] * 2, "reader_id": ["r5"] * 2,
                          "rssi_dbm": [-59.0, -59.0]})    # = P0: the tag is ~1 m from r5
    positions = estimate_positions(reads, READERS, model=PathLossModel(p0_dbm=-59.0))
    assert len(positions) == 1
    assert np.hypot(positions["x_m"].iloc[0] - 5.0, positions["y_m"].iloc[0] - 5.0) < 1.5


def test_each_tag_is_tracked_separately():
    a = synth_reads(np.tile((2.0, 2.0), (3, 1)), LOW_NOISE, tag_id="a")
    b = synth_reads(np.tile((8.0, 8.0), (3, 1)), LOW_NOISE, tag_id="b")
    positions = estimate_positions(pd.concat([a, b]), READERS, model=LOW_NOISE)
    by_tag = positions.groupby("tag_id")[["x_m", "y_m"]].mean()
    assert np.allclose(by_tag.loc["a"], (2.0, 2.0), atol=0.2)
    assert np.allclose(by_tag.loc["b"], (8.0, 8.0), atol=0.2)


def test_calibrate_p0_recovers_the_rssi_at_one_metre():
    reads = synth_reads(np.tile((3.0, 4.0), (5, 1)), PathLossModel(p0_dbm=-61.5), noise_db=0.5, seed=1)
    assert calibrate_p0(reads, READERS, (3.0, 4.0, 0.0)) == pytest.approx(-61.5, abs=0.3)


# ----------------------------------------------------------------------------- bad input

def _good_rows(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + timedelta(seconds=0.1 * i) for i in range(n)],
                         "tag_id": ["tag-1"] * n, "reader_id": ["r1", "r2", "r3", "r4"][:n],
                         "rssi_dbm": [-70.0, -72.0, -75.0, -71.0][:n]})


BAD_ROWS = [
    ({"rssi_dbm": 42.0}, "rssi_dbm=+42 is positive; BLE/RFID RSSI is negative"),
    ({"reader_id": "ghost"}, "unknown reader 'ghost'"),
    ({"rssi_dbm": np.nan}, "rssi_dbm is missing"),
    ({"rssi_dbm": "loud"}, "rssi_dbm is missing or not a number"),
    ({"tag_id": None}, "tag_id is missing"),
    ({"ts": datetime(2025, 3, 1, 8, 0, 0, 300000)}, "naive"),
    ({"ts": pd.Timestamp("2025-03-01 09:00:00.3", tz="Europe/Berlin")}, "time zone"),
    ({"ts": None}, "ts is missing"),
]


@pytest.mark.parametrize("override,reason", BAD_ROWS,
                         ids=["positive-rssi", "unknown-reader", "nan-rssi", "text-rssi", "no-tag",
                              "naive-ts", "non-utc-ts", "no-ts"])
def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_still_located(override, reason):
    bad = pd.DataFrame([{**_good_rows(1).iloc[0].to_dict(), **override}])
    reads = pd.concat([_good_rows(), bad], ignore_index=True).astype({"ts": object, "rssi_dbm": object})
    positions = estimate_positions(reads, READERS)
    rejected = positions.attrs["rejected"]
    assert len(rejected) == 1
    assert reason in rejected["reason"].iloc[0]
    assert len(positions) == 1 and positions["tag_id"].iloc[0] == "tag-1"


def test_a_naive_datetime_column_is_rejected_whole_not_raised():
    reads = _good_rows().assign(ts=lambda f: f["ts"].dt.tz_localize(None))
    positions, rejected = estimate_positions_with_report(reads, READERS)
    assert positions.empty
    assert len(rejected) == 4 and rejected["reason"].str.contains("naive").all()


def test_several_problems_in_one_row_are_all_named():
    reads = pd.DataFrame({"ts": [T0], "tag_id": ["t"], "reader_id": ["ghost"], "rssi_dbm": [3.0]})
    _, rejected = validate_reads(reads, READERS)
    assert "positive" in rejected["reason"].iloc[0] and "unknown reader" in rejected["reason"].iloc[0]


def test_empty_input_gives_empty_frames_with_the_interface_columns():
    empty = pd.DataFrame({c: [] for c in ["ts", "tag_id", "reader_id", "rssi_dbm"]})
    positions, rejected = estimate_positions_with_report(empty, READERS)
    assert list(positions.columns) == ["ts", "tag_id", "x_m", "y_m"] and positions.empty
    assert rejected.empty
    assert estimate_positions(empty, READERS).attrs["rejected"].empty


@pytest.mark.parametrize("readers,match", [
    (READERS.drop(columns="y_m"), "lacks columns"),
    (pd.concat([READERS, READERS.iloc[:1]]), "more than once"),
    (READERS.assign(x_m=[0.0, None, 0.0, 10.0, 5.0]), "without numeric"),
], ids=["missing-column", "duplicate-reader", "reader-without-position"])
def test_an_unusable_readers_table_raises_a_precise_error(readers, match):
    with pytest.raises(PositioningError, match=match):
        estimate_positions(_good_rows(), readers)
    assert issubclass(PositioningError, InvalidInput)


def test_reads_without_required_columns_raise():
    with pytest.raises(PositioningError, match="rssi_dbm"):
        estimate_positions(_good_rows().drop(columns="rssi_dbm"), READERS)


# ----------------------------------------------------------------------------- property

read_rows = st.lists(st.tuples(st.floats(0, 30, allow_nan=False), st.sampled_from(["a", "b", "c"]),
                               st.sampled_from(list(READERS["reader_id"])), st.floats(-100, -30)),
                     min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=read_rows, window_s=st.sampled_from([0.5, 1.0, 2.5]))
def test_every_window_with_valid_reads_gets_an_estimate_per_tag(rows, window_s):
    reads = pd.DataFrame([(T0 + timedelta(seconds=s), tag, rid, r) for s, tag, rid, r in rows],
                         columns=["ts", "tag_id", "reader_id", "rssi_dbm"])
    reads["ts"] = reads["ts"].astype("datetime64[us, UTC]")
    positions = estimate_positions(reads, READERS, window_s=window_s, grid_step_m=0.5)
    epoch_s = reads["ts"].astype("int64") / 1e6
    expected = set(zip(reads["tag_id"], np.floor(epoch_s / window_s).astype(int)))
    got_epoch_s = positions["ts"].astype("int64") / 1e6
    got = set(zip(positions["tag_id"], np.floor(got_epoch_s / window_s).astype(int)))
    assert got == expected
    assert positions[["x_m", "y_m"]].notna().all().all()


# ----------------------------------------------------------------------------- baselines

def test_baselines_point_at_the_strongest_readers():
    reads = _good_rows()   # r1 -70, r2 -72, r3 -75, r4 -71 dBm
    nearest = nearest_reader_positions(reads, READERS)
    assert (nearest["x_m"].iloc[0], nearest["y_m"].iloc[0]) == (0.0, 0.0)
    centroid = weighted_centroid_positions(reads, READERS, k=3)   # r1, r4, r2 by power in mW
    w = 10 ** (np.array([-70.0, -71.0, -72.0]) / 10)
    assert centroid["x_m"].iloc[0] == pytest.approx((w * [0, 10, 10]).sum() / w.sum())
    assert centroid["y_m"].iloc[0] == pytest.approx((w * [0, 10, 0]).sum() / w.sum())


# ----------------------------------------------------------------------------- dataset files

def test_read_mbd_parses_trajectory_and_fingerprint_lines(tmp_path):
    trk = tmp_path / "t.mbd"
    trk.write_text("1581252411.2438352,b827eb4521b4,e78f135624ce,-72,11.711,4.129,1.84,"
                   "0.008,-0.006,-1.01,0.443,-0.004,0.02,-0.004,-0.465,-0.017\n"
                   "1581252411.5,000000000101,e78f135624ce,42,11.8,4.2,1.84,0,0,0,0,0,0,0,0,0\n")
    reads = read_mbd(trk)
    assert list(reads.columns) == ["ts", "reader_id", "tag_id", "rssi_dbm", "true_x_m", "true_y_m", "true_z_m"]
    assert reads["reader_id"].tolist() == ["b827eb4521b4", "000000000101"]   # leading zeros kept
    assert reads["ts"].iloc[0] == pd.Timestamp("2020-02-09 12:46:51.243835", tz="UTC")
    assert reads["rssi_dbm"].tolist() == [-72.0, 42.0]   # kept as read; validation judges it
    hst = tmp_path / "h.mbd"
    hst.write_text("1568981880.366180896,b827eb4521b4,e78f135624ce,-71\n")
    assert read_mbd(hst)["true_x_m"].isna().all()


def test_read_dev_and_read_occ(tmp_path):
    dev = tmp_path / "x.dev"
    dev.write_text('Dongles:{"b827eb4521b4": [[7.00, 7.09, 1.22], 16711680, "sensor10"], '
                   '"000000000101": [[7.18, 0.68, 2.30], 16711730, "sensor11"]}\n'
                   'Beacons:{"e78f135624ce": [[], 1328790, "beacon1"] }\n')
    readers = read_dev(dev)
    assert readers["reader_id"].tolist() == ["b827eb4521b4", "000000000101"]
    assert readers.loc[1, ["x_m", "y_m", "z_m"]].tolist() == [7.18, 0.68, 2.30]
    occ = tmp_path / "x.occ"
    occ.write_text("[[0.0, 0.0], [1.0, 0.5]]::0.5\n[0.0, 0.0]::1\n[0.5, 0.0]::0\n[1.0, 0.0]::0\n"
                   "[0.0, 0.5]::0\n[0.5, 0.5]::1\n[1.0, 0.5]::0\n")
    grid = read_occ(occ)
    assert grid.walkable.tolist() == [[False, True], [True, False], [True, True]]
    assert grid.is_walkable(np.array([0.5, 0.5, 5.0]), np.array([0.0, 0.5, 5.0])).tolist() == [True, False, False]


@pytest.mark.parametrize("name,text,reader", [
    ("bad.mbd", "not,a,timestamp,-70\n", read_mbd),
    ("cols.mbd", "1.0,a,b\n", read_mbd),
    ("bad.dev", "Beacons:{}\n", read_dev),
    ("bad.occ", "[0.0, 0.0]::1\n", read_occ),
], ids=["mbd-timestamp", "mbd-columns", "dev-no-dongles", "occ-no-header"])
def test_malformed_dataset_files_raise_a_format_error(tmp_path, name, text, reader):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetFormatError):
        reader(path)


# ----------------------------------------------------------------------------- real dataset

@pytest.mark.external
def test_real_ble_dataset_accuracy_and_rejections(external_dir):
    data = external_dir / "ble_rssi_position_annotated"
    readers = read_dev(data / "cnf" / "tetam.dev")
    walkable = read_occ(data / "occ" / "tetam_0.5.occ")
    errors, rejected = [], []
    for path in sorted((data / "trk").glob("*_all_sensors.mbd")):
        reads = read_mbd(path)
        positions, rej = estimate_positions_with_report(reads, readers, walkable=walkable)
        truth = reads[reads["rssi_dbm"] < 0].sort_values("ts")
        t, at = truth["ts"].astype("int64"), positions["ts"].astype("int64")
        errors.append(np.hypot(positions["x_m"] - np.interp(at, t, truth["true_x_m"]),
                               positions["y_m"] - np.interp(at, t, truth["true_y_m"])))
        rejected.append(rej)
    errors, rejected = np.concatenate(errors), pd.concat(rejected)
    assert len(errors) > 650
    assert np.median(errors) <= 1.5
    assert np.percentile(errors, 90) <= 3.0
    assert sorted(rejected["rssi_dbm"]) == [29.0, 42.0]
    assert set(rejected["reader_id"]) == {"b827ebf7d096"}
    assert rejected["reason"].str.contains("is positive; BLE/RFID RSSI is negative").all()


@pytest.mark.external
def test_real_occupancy_grid_marks_one_as_occupied(external_dir):
    data = external_dir / "ble_rssi_position_annotated"
    grid = read_occ(data / "occ" / "tetam_0.5.occ")
    truth = pd.concat(read_mbd(p) for p in (data / "trk").glob("*_all_sensors.mbd"))
    assert grid.is_walkable(truth["true_x_m"], truth["true_y_m"]).mean() > 0.95
