"""RSSI positioning of tags from fixed readers (issue 6).

Model: log-distance path loss, RSSI = P0 - 10 n log10(d) + N(0, sigma_db^2). Per tag, reads are
grouped into windows of `window_s`; each window gives a likelihood over a regular grid of candidate
positions (all windows at once, as matrix products). A grid Bayes filter then tracks the tag:
a random-walk motion model (Gaussian blur of the posterior, sigma = speed_m_s * dt) and the
walkable area as a hard constraint (blocked cells carry zero probability). By default the batch is
smoothed forward-backward; at the newest window the smoothed estimate equals the causal filter's, so
the live edge is never informed by future reads that do not exist yet.

Why a grid rather than Gauss-Newton + Kalman: the floor plan makes the posterior multimodal (two
corridors either side of a row of tables); a histogram filter keeps both hypotheses and honours the
walls exactly, where a Kalman estimate would have to be projected back after the fact. Measured on
the public Danis et al. BLE dataset (bench/positioning_eval.py): per-window WLS 2.0 m median,
this smoother 1.2 m median / 2.5 m p90.

Invalid reads (positive or missing RSSI, unknown reader, missing tag, naive / non-UTC / missing
timestamps) are never raised and never silently dropped: they come back as a rejected frame with a
`reason` column (also in `positions.attrs["rejected"]`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.ndimage import distance_transform_edt, gaussian_filter
from scipy.stats import trim_mean

from core.errors import InvalidInput

POSITION_COLUMNS = ["ts", "tag_id", "x_m", "y_m"]
READ_REQUIRED = ["ts", "tag_id", "reader_id", "rssi_dbm"]

# Default path-loss parameters. exponent 2.0 = free-space propagation (Friis). p0_dbm is the RSSI at
# 1 m, calibrated with `calibrate_p0` on the stationary fingerprint of the Danis et al. dataset
# (hst_sample: mean -71.19 dBm at 5.16 m from sensor10 -> -56.9 dBm at 1 m). It is not fitted on
# any walked trajectory, so the evaluation on those trajectories stays free of ground-truth leakage.
DEFAULT_P0_DBM = -56.9
DEFAULT_EXPONENT = 2.0
# Per-read RSSI scatter; indoor BLE shadowing is typically 4-6 dB (model constant, not a standard).
DEFAULT_SIGMA_DB = 5.0
# Systematic per-reader error (antenna gain, mounting, a pillar in the way) that averaging more reads
# of the same reader cannot remove; it caps how much one loud reader can dominate a window.
DEFAULT_READER_BIAS_DB = 4.0
# Random-walk speed of the motion model: roughly indoor walking pace on a ward.
DEFAULT_SPEED_M_S = 1.0
MIN_DISTANCE_M = 0.5       # the far-field model is meaningless closer than this
GRID_STEP_M = 0.25
MARGIN_M = 2.0             # grid margin around the readers when no floor plan is given
MAX_CELLS_PER_BLOCK = 4_000_000  # windows x cells held in memory at once (float32 -> 16 MB)


class PositioningError(InvalidInput):
    """The readers table or the reads frame is unusable as a whole (not a per-row problem)."""


@dataclass(frozen=True)
class PathLossModel:
    """Log-distance path loss: rssi_dbm = p0_dbm - 10 * exponent * log10(distance_m)."""
    p0_dbm: float = DEFAULT_P0_DBM
    exponent: float = DEFAULT_EXPONENT
    sigma_db: float = DEFAULT_SIGMA_DB
    reader_bias_db: float = DEFAULT_READER_BIAS_DB

    def weight(self, count: np.ndarray) -> np.ndarray:
        """1 / variance of a window's mean RSSI over `count` reads of one reader (0 if unheard)."""
        variance = self.sigma_db ** 2 / np.maximum(count, 1) + self.reader_bias_db ** 2
        return np.where(count > 0, 1.0 / variance, 0.0)

    def rssi_dbm(self, distance_m: np.ndarray) -> np.ndarray:
        return self.p0_dbm - 10.0 * self.exponent * np.log10(np.maximum(distance_m, MIN_DISTANCE_M))


@dataclass(frozen=True, eq=False)
class OccupancyGrid:
    """Walkable cells of a floor: walkable[ix, iy] is the cell centred on
    (origin_x_m + ix * resolution_m, origin_y_m + iy * resolution_m)."""
    origin_x_m: float
    origin_y_m: float
    resolution_m: float
    walkable: np.ndarray

    def is_walkable(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        ix = np.rint((np.asarray(x_m, float) - self.origin_x_m) / self.resolution_m).astype(int)
        iy = np.rint((np.asarray(y_m, float) - self.origin_y_m) / self.resolution_m).astype(int)
        nx, ny = self.walkable.shape
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.zeros(ix.shape, bool)
        out[inside] = self.walkable[ix[inside], iy[inside]]
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        half = self.resolution_m / 2
        nx, ny = self.walkable.shape
        return (self.origin_x_m - half, self.origin_y_m - half,
                self.origin_x_m + (nx - 0.5) * self.resolution_m,
                self.origin_y_m + (ny - 0.5) * self.resolution_m)

    def to_polygon(self):
        """Union of the walkable cells as a shapely (Multi)Polygon, e.g. to draw on the floor map."""
        ix, iy = np.nonzero(self.walkable)
        x0 = self.origin_x_m + (ix - 0.5) * self.resolution_m
        y0 = self.origin_y_m + (iy - 0.5) * self.resolution_m
        boxes = shapely.box(x0, y0, x0 + self.resolution_m, y0 + self.resolution_m)
        return shapely.union_all(boxes)


# ----------------------------------------------------------------------------- validation

def _check_readers(readers: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("reader_id", "x_m", "y_m") if c not in readers.columns]
    if missing:
        raise PositioningError(f"readers table lacks columns {missing}")
    out = readers.copy()
    out["reader_id"] = out["reader_id"].astype(str)
    if out["reader_id"].duplicated().any():
        dup = sorted(out.loc[out["reader_id"].duplicated(), "reader_id"].unique())
        raise PositioningError(f"readers table lists reader_id more than once: {dup}")
    coords = out[["x_m", "y_m"]].apply(pd.to_numeric, errors="coerce")
    if coords.isna().any().any():
        bad = out.loc[coords.isna().any(axis=1), "reader_id"].tolist()
        raise PositioningError(f"readers without numeric x_m/y_m: {bad}")
    out[["x_m", "y_m"]] = coords
    if "z_m" in out.columns:
        out["z_m"] = pd.to_numeric(out["z_m"], errors="coerce")
    return out.reset_index(drop=True)


# Spellings of UTC across datetime.timezone, zoneinfo, pytz and dateutil. A zone that merely happens
# to be at +00:00 today (Europe/London in winter) is not UTC and is refused.
_UTC_NAMES = {"UTC", "Etc/UTC", "UTC+00:00", "tzutc()", "Z"}


def _ts_reasons(ts: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(ts as UTC datetime64 with NaT where invalid, reason per row or None)."""
    reason = pd.Series(None, index=ts.index, dtype=object)
    dtype = ts.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        if str(dtype.tz) not in _UTC_NAMES:
            reason[:] = f"ts has time zone {dtype.tz}; Wardsight expects tz-aware UTC"
            return pd.Series(pd.NaT, index=ts.index, dtype="datetime64[us, UTC]"), reason
        reason[ts.isna()] = "ts is missing"
        return ts.astype("datetime64[us, UTC]"), reason
    if pd.api.types.is_datetime64_dtype(dtype):
        reason[:] = "ts is naive (no time zone); Wardsight never guesses a zone"
        return pd.Series(pd.NaT, index=ts.index, dtype="datetime64[us, UTC]"), reason
    # Slow path for non-canonical input (object column of mixed values): classify each value.
    parsed = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[us, UTC]")
    for i, value in ts.items():
        try:
            stamp = pd.Timestamp(value) if value is not None else pd.NaT
        except (ValueError, TypeError):
            reason[i] = f"ts={value!r} is not a timestamp"
            continue
        if stamp is pd.NaT or pd.isna(stamp):
            reason[i] = "ts is missing"
        elif stamp.tzinfo is None:
            reason[i] = "ts is naive (no time zone); Wardsight never guesses a zone"
        elif str(stamp.tzinfo) not in _UTC_NAMES:
            reason[i] = f"ts has time zone {stamp.tzinfo}; Wardsight expects tz-aware UTC"
        else:
            parsed[i] = stamp
    return parsed, reason


def validate_reads(reads: pd.DataFrame, readers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `reads` into (valid, rejected). Valid has ts (UTC), tag_id, reader_id (str), rssi_dbm
    (float); rejected keeps the original columns plus `reason` (several reasons joined by '; ')."""
    missing = [c for c in READ_REQUIRED if c not in reads.columns]
    if missing:
        raise PositioningError(f"reads frame lacks columns {missing}")
    known = set(_check_readers(readers)["reader_id"])
    reads = reads.reset_index(drop=True)
    ts, ts_reason = _ts_reasons(reads["ts"])
    rssi = pd.to_numeric(reads["rssi_dbm"], errors="coerce").astype(float)
    reader = reads["reader_id"].astype("str")
    tag = reads["tag_id"]
    checks = [
        (ts_reason.notna(), ts_reason),
        (rssi.isna(), pd.Series("rssi_dbm is missing or not a number", index=reads.index)),
        (rssi > 0, "rssi_dbm=" + rssi.map("{:+g}".format).astype("str")
         + " is positive; BLE/RFID RSSI is negative"),
        (reads["reader_id"].isna() | ~reader.isin(known),
         "unknown reader " + reader.map(repr).astype("str") + " (not in the readers table)"),
        (tag.isna() | (tag.astype("str").str.strip() == ""),
         pd.Series("tag_id is missing", index=reads.index)),
    ]
    reason = pd.Series("", index=reads.index, dtype=object)
    for bad, text in checks:
        bad = bad.fillna(False).to_numpy(bool)
        joined = np.where(reason[bad] == "", text[bad], reason[bad] + "; " + text[bad])
        reason[bad] = joined
    bad_rows = (reason != "").to_numpy()
    rejected = reads.loc[bad_rows].assign(reason=reason[bad_rows].astype(str))
    valid = pd.DataFrame({"ts": ts[~bad_rows], "tag_id": tag[~bad_rows].astype("str"),
                          "reader_id": reader[~bad_rows], "rssi_dbm": rssi[~bad_rows]})
    return valid.reset_index(drop=True), rejected.reset_index(drop=True)


# ----------------------------------------------------------------------------- windows

def _window_table(valid: pd.DataFrame, reader_ids: pd.Index, window_s: float) -> pd.DataFrame:
    """One row per (tag, window, reader): mean rssi_dbm and read count. Windows are aligned to the
    epoch, so two calls over overlapping batches agree on window boundaries."""
    epoch_s = valid["ts"].astype("int64").to_numpy() / 1e6 if len(valid) else np.zeros(0)
    frame = pd.DataFrame({
        "tag_id": valid["tag_id"].to_numpy(),
        "window": np.floor(epoch_s / window_s).astype(np.int64),
        "reader": reader_ids.get_indexer(valid["reader_id"]),
        "rssi_dbm": valid["rssi_dbm"].to_numpy(),
    })
    return (frame.groupby(["tag_id", "window", "reader"], sort=True)["rssi_dbm"]
            .agg(["mean", "size"]).reset_index())


def _window_ts(window: np.ndarray, window_s: float) -> pd.Series:
    # The estimate is stamped at the window centre: the reads it averages are spread around it.
    centre_us = np.rint((window + 0.5) * window_s * 1e6).astype("int64")
    return pd.Series(pd.to_datetime(centre_us, unit="us", utc=True))


# ----------------------------------------------------------------------------- grid

@dataclass(frozen=True, eq=False)
class _Grid:
    gx: np.ndarray           # (nx,) cell centre x
    gy: np.ndarray           # (ny,)
    mask: np.ndarray         # (nx, ny) walkable
    snap: np.ndarray         # (2, nx, ny) index of the nearest walkable cell
    step_m: float


def _make_grid(readers: pd.DataFrame, walkable, step_m: float) -> _Grid:
    if isinstance(walkable, OccupancyGrid):
        x0, y0, x1, y1 = walkable.bounds()
    elif walkable is not None:
        x0, y0, x1, y1 = shapely.bounds(walkable)
    else:
        x0, y0 = readers["x_m"].min() - MARGIN_M, readers["y_m"].min() - MARGIN_M
        x1, y1 = readers["x_m"].max() + MARGIN_M, readers["y_m"].max() + MARGIN_M
    gx = np.arange(x0 + step_m / 2, x1, step_m)
    gy = np.arange(y0 + step_m / 2, y1, step_m)
    GX, GY = np.meshgrid(gx, gy, indexing="ij")
    if isinstance(walkable, OccupancyGrid):
        mask = walkable.is_walkable(GX, GY)
    elif walkable is not None:
        mask = shapely.contains_xy(walkable, GX, GY)
    else:
        mask = np.ones(GX.shape, bool)
    if not mask.any():
        raise PositioningError("the walkable area contains no grid cell")
    _, snap = distance_transform_edt(~mask, return_indices=True)
    return _Grid(gx, gy, mask, snap, step_m)


def _log_likelihood(mean_dbm, count, cell_model_dbm, model: PathLossModel) -> np.ndarray:
    """(windows, cells) Gaussian log-likelihood of each window's mean RSSI per reader, expanded
    as sum w (m - g)^2 = sum w m^2 - 2 (w m) g + w g^2 so all windows are three matrix products."""
    w = model.weight(count)
    m = np.nan_to_num(mean_dbm)
    sq = (w * m * m).sum(axis=1)[:, None] - 2.0 * (w * m) @ cell_model_dbm.T + w @ (cell_model_dbm ** 2).T
    return -sq / 2.0


def _blur(p: np.ndarray, sigma_cells: float, mask: np.ndarray) -> np.ndarray:
    if sigma_cells > max(mask.shape):         # a long silence: anywhere walkable is possible again
        return mask.astype(float)
    return gaussian_filter(p, sigma_cells, mode="constant", truncate=3.0) * mask


def _normalise(p: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    total = p.sum()
    if not np.isfinite(total) or total <= 0:    # prior and evidence disagree completely: trust evidence
        p, total = fallback, fallback.sum()
    return p / total


def _track(loglik: np.ndarray, dt_s: np.ndarray, grid: _Grid, speed_m_s: float,
           smooth: bool) -> np.ndarray:
    """Forward (and backward) pass of the grid filter; returns (windows, nx, ny) posteriors."""
    shape = grid.mask.shape
    lik = np.exp(loglik - np.where(grid.mask.ravel(), loglik, -np.inf).max(axis=1, keepdims=True))
    lik = (lik.reshape((-1,) + shape) * grid.mask).astype(np.float32)
    sigma = speed_m_s * dt_s / grid.step_m
    post = np.empty_like(lik)
    belief = grid.mask / grid.mask.sum()
    for t in range(len(lik)):
        prior = _blur(belief, sigma[t], grid.mask) if t else belief
        belief = _normalise(prior * lik[t], lik[t])
        post[t] = belief
    if smooth:
        back = grid.mask.astype(float)
        for t in range(len(lik) - 2, -1, -1):
            back = _normalise(_blur(back * lik[t + 1], sigma[t + 1], grid.mask), grid.mask)
            post[t] = _normalise(post[t] * back, post[t])
    return post


def _posterior_points(post: np.ndarray, grid: _Grid) -> np.ndarray:
    """Posterior mean per window, snapped to the nearest walkable cell if it lands in a blocked one
    (the mean of two corridors can fall on the table between them)."""
    px = post.sum(axis=2)
    py = post.sum(axis=1)
    x = px @ grid.gx
    y = py @ grid.gy
    ix = np.clip(np.rint((x - grid.gx[0]) / grid.step_m).astype(int), 0, len(grid.gx) - 1)
    iy = np.clip(np.rint((y - grid.gy[0]) / grid.step_m).astype(int), 0, len(grid.gy) - 1)
    blocked = ~grid.mask[ix, iy]
    x[blocked] = grid.gx[grid.snap[0, ix[blocked], iy[blocked]]]
    y[blocked] = grid.gy[grid.snap[1, ix[blocked], iy[blocked]]]
    return np.column_stack([x, y])


def _cell_model(grid: _Grid, readers: pd.DataFrame, model: PathLossModel,
                tag_height_m: float) -> np.ndarray:
    GX, GY = np.meshgrid(grid.gx, grid.gy, indexing="ij")
    cells = np.column_stack([GX.ravel(), GY.ravel()])
    rz = readers["z_m"].to_numpy(float) if "z_m" in readers.columns else np.full(len(readers), np.nan)
    dz = np.where(np.isnan(rz), 0.0, rz - tag_height_m)   # no z given: assume same height as the tag
    d2 = ((cells[:, None, :] - readers[["x_m", "y_m"]].to_numpy(float)[None]) ** 2).sum(axis=2)
    return model.rssi_dbm(np.sqrt(d2 + dz[None, :] ** 2))


def _estimate_tag(win: pd.DataFrame, n_readers: int, grid: _Grid, cell_model: np.ndarray,
                  model: PathLossModel, window_s: float, speed_m_s: float, smooth: bool) -> np.ndarray:
    windows, row = np.unique(win["window"].to_numpy(), return_inverse=True)
    mean = np.zeros((len(windows), n_readers))
    count = np.zeros((len(windows), n_readers))
    mean[row, win["reader"].to_numpy()] = win["mean"].to_numpy()
    count[row, win["reader"].to_numpy()] = win["size"].to_numpy()
    dt_s = np.diff(windows, prepend=windows[0]) * window_s
    block = max(1, MAX_CELLS_PER_BLOCK // cell_model.shape[0])
    out = []
    # Long batches are smoothed block by block to bound memory; each block starts afresh.
    for start in range(0, len(windows), block):
        sl = slice(start, start + block)
        loglik = _log_likelihood(mean[sl], count[sl], cell_model, model)
        out.append(_posterior_points(_track(loglik, dt_s[sl], grid, speed_m_s, smooth), grid))
    return windows, np.vstack(out)


# ----------------------------------------------------------------------------- public API

def estimate_positions_with_report(reads: pd.DataFrame, readers: pd.DataFrame, window_s: float = 1.0,
                                   *, walkable=None, model: PathLossModel | None = None,
                                   speed_m_s: float = DEFAULT_SPEED_M_S, smooth: bool = True,
                                   tag_height_m: float = 1.2, grid_step_m: float = GRID_STEP_M,
                                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(positions, rejected): one position per tag per window that has valid reads.

    walkable: optional OccupancyGrid or shapely (Multi)Polygon of the floor's walkable area;
    estimates never leave it. smooth=False gives the causal filter only (each estimate uses reads up
    to its own window). tag_height_m matters only for readers with a z_m.
    """
    if not window_s > 0:
        raise PositioningError(f"window_s={window_s!r} must be positive")
    model = model or PathLossModel()
    readers = _check_readers(readers)
    valid, rejected = validate_reads(reads, readers)
    empty = pd.DataFrame({"ts": pd.Series(dtype="datetime64[us, UTC]"), "tag_id": pd.Series(dtype="str"),
                          "x_m": pd.Series(dtype=float), "y_m": pd.Series(dtype=float)})
    if valid.empty:
        return empty, rejected
    grid = _make_grid(readers, walkable, grid_step_m)
    cell_model = _cell_model(grid, readers, model, tag_height_m)
    table = _window_table(valid, pd.Index(readers["reader_id"]), window_s)
    parts = []
    for tag_id, win in table.groupby("tag_id", sort=True):
        windows, xy = _estimate_tag(win, len(readers), grid, cell_model, model, window_s,
                                    speed_m_s, smooth)
        parts.append(pd.DataFrame({"ts": _window_ts(windows, window_s), "tag_id": tag_id,
                                   "x_m": xy[:, 0], "y_m": xy[:, 1]}))
    positions = pd.concat(parts, ignore_index=True)
    positions["tag_id"] = positions["tag_id"].astype("str")
    return positions, rejected


def estimate_positions(reads: pd.DataFrame, readers: pd.DataFrame, window_s: float = 1.0,
                       **options) -> pd.DataFrame:
    """Positions (ts, tag_id, x_m, y_m) per tag and window; rejected reads in attrs["rejected"]."""
    positions, rejected = estimate_positions_with_report(reads, readers, window_s, **options)
    positions.attrs["rejected"] = rejected
    return positions


def calibrate_p0(reads: pd.DataFrame, readers: pd.DataFrame, tag_xyz_m: tuple[float, float, float],
                 exponent: float = DEFAULT_EXPONENT) -> float:
    """RSSI at 1 m (dBm) from reads of a tag held still at a known point: the 10 %-trimmed mean over
    reads of rssi + 10 n log10(d). Trimmed, because a stationary log still has multipath outliers;
    a mean, because RSSI comes in whole dB and a median would round the answer to 1 dB."""
    valid, _ = validate_reads(reads, readers)
    if valid.empty:
        raise PositioningError("no valid reads to calibrate on")
    readers = _check_readers(readers).set_index("reader_id")
    at = readers.loc[valid["reader_id"]]
    z = at["z_m"].fillna(tag_xyz_m[2]).to_numpy() if "z_m" in at.columns else tag_xyz_m[2]
    d = np.sqrt((at["x_m"].to_numpy() - tag_xyz_m[0]) ** 2 + (at["y_m"].to_numpy() - tag_xyz_m[1]) ** 2
                + (z - tag_xyz_m[2]) ** 2)
    implied = valid["rssi_dbm"].to_numpy() + 10 * exponent * np.log10(np.maximum(d, MIN_DISTANCE_M))
    return float(trim_mean(implied, 0.1))


# ----------------------------------------------------------------------------- baselines

def _strongest(reads: pd.DataFrame, readers: pd.DataFrame, window_s: float, k: int) -> pd.DataFrame:
    readers = _check_readers(readers)
    valid, _ = validate_reads(reads, readers)
    table = _window_table(valid, pd.Index(readers["reader_id"]), window_s)
    table = table.sort_values(["tag_id", "window", "mean"], ascending=[True, True, False])
    top = table.groupby(["tag_id", "window"], sort=False).head(k)
    xy = readers[["x_m", "y_m"]].to_numpy(float)[top["reader"].to_numpy()]
    return top.assign(x_m=xy[:, 0], y_m=xy[:, 1])


def nearest_reader_positions(reads: pd.DataFrame, readers: pd.DataFrame,
                             window_s: float = 1.0) -> pd.DataFrame:
    """Baseline: the position of the reader with the strongest mean RSSI in the window."""
    return weighted_centroid_positions(reads, readers, window_s, k=1)


def weighted_centroid_positions(reads: pd.DataFrame, readers: pd.DataFrame, window_s: float = 1.0,
                                k: int = 3) -> pd.DataFrame:
    """Baseline: centroid of the k strongest readers weighted by received power in mW."""
    top = _strongest(reads, readers, window_s, k)
    top = top.assign(w=10 ** (top["mean"] / 10))
    top = top.assign(wx=top["w"] * top["x_m"], wy=top["w"] * top["y_m"])
    agg = top.groupby(["tag_id", "window"], sort=True)[["w", "wx", "wy"]].sum().reset_index()
    return pd.DataFrame({"ts": _window_ts(agg["window"].to_numpy(), window_s),
                         "tag_id": agg["tag_id"].astype("str"),
                         "x_m": agg["wx"] / agg["w"], "y_m": agg["wy"] / agg["w"]})
