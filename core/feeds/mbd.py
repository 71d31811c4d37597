"""Readers for the file formats of the Position Annotated BLE RSSI Dataset (Danis et al., CC0):

    *.mbd  unix_ts,MAC_sensor,MAC_beacon,RSSI[,x,y,z,<9 orientation values>]
    *.dev  Dongles:{mac: [[x, y, z], colour, alias], ...} / Beacons:{...}
    *.occ  header "[[x0, y0], [x1, y1]]::resolution", then one "[x, y]::v" line per cell

Rows are returned as they are in the file (a positive RSSI is kept): judging reads is the job of
core.positioning.validate_reads, which reports each rejected row with a reason.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InvalidInput
from core.positioning import OccupancyGrid

MBD_COLUMNS = ["ts", "reader_id", "tag_id", "rssi_dbm", "true_x_m", "true_y_m", "true_z_m"]
_SECTION = re.compile(r"^\s*(\w+)\s*:\s*(\{.*\})\s*$")
_OCC_HEADER = re.compile(r"^\[\[(.+?),(.+?)\],\s*\[(.+?),(.+?)\]\]::(.+)$")
_OCC_CELL = re.compile(r"^\[(.+?),(.+?)\]::(\d+)$")


class DatasetFormatError(InvalidInput):
    """A dataset file does not follow the documented .mbd/.dev/.occ format."""


def read_mbd(path: str | Path) -> pd.DataFrame:
    """Reads of one .mbd log: ts (UTC), reader_id, tag_id, rssi_dbm and, for trajectory logs, the
    ground-truth position true_x_m/true_y_m/true_z_m (NaN for fingerprint logs without it)."""
    path = Path(path)
    try:
        # MACs like 000000000101 must stay strings, not become integers.
        raw = pd.read_csv(path, header=None, dtype={1: "str", 2: "str"}, skip_blank_lines=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetFormatError(f"{path}: cannot read as .mbd ({exc})") from exc
    if raw.shape[1] not in (4, 7, 16):
        raise DatasetFormatError(f"{path}: {raw.shape[1]} columns; .mbd has 4 or 16")
    seconds = pd.to_numeric(raw[0], errors="coerce")
    if seconds.isna().any():
        raise DatasetFormatError(f"{path}: line {int(seconds.isna().idxmax()) + 1} has no unix timestamp")
    out = pd.DataFrame({
        # Unix seconds with sub-microsecond digits: round to the microsecond (pandas 3 default).
        "ts": pd.to_datetime(np.rint(seconds.to_numpy() * 1e6).astype("int64"), unit="us", utc=True),
        "reader_id": raw[1].astype("str"),
        "tag_id": raw[2].astype("str"),
        "rssi_dbm": pd.to_numeric(raw[3], errors="coerce").astype(float),
    })
    for i, col in enumerate(("true_x_m", "true_y_m", "true_z_m"), start=4):
        out[col] = pd.to_numeric(raw[i], errors="coerce").astype(float) if raw.shape[1] > i else np.nan
    return out


def _sections(path: Path) -> dict[str, dict]:
    sections = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _SECTION.match(line)
        if match:
            try:
                sections[match.group(1)] = json.loads(match.group(2))
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f"{path}: section {match.group(1)} is not JSON ({exc})") from exc
    return sections


def read_dev(path: str | Path) -> pd.DataFrame:
    """Fixed readers ("Dongles") of a .dev file: reader_id (MAC), x_m, y_m, z_m, alias."""
    path = Path(path)
    dongles = _sections(path).get("Dongles")
    if not dongles:
        raise DatasetFormatError(f"{path}: no 'Dongles:{{...}}' section")
    rows = []
    for mac, spec in dongles.items():
        try:
            (x, y, z), alias = spec[0], spec[2]
        except (TypeError, ValueError, IndexError) as exc:
            raise DatasetFormatError(f"{path}: dongle {mac} is not [[x, y, z], colour, alias]") from exc
        rows.append((str(mac), float(x), float(y), float(z), str(alias)))
    return pd.DataFrame(rows, columns=["reader_id", "x_m", "y_m", "z_m", "alias"]).astype(
        {"reader_id": "str", "alias": "str"})


def read_occ(path: str | Path, occupied_value: int = 1) -> OccupancyGrid:
    """Walkable grid of a .occ file. Each "[x, y]::v" line is the cell centred on (x, y).

    occupied_value=1: in tetam_0.5.occ, 98 % of the camera ground-truth positions of all nine walked
    trajectories fall in cells marked 0 and the cells marked 1 form the table blocks of the floor
    plan image, so 1 means occupied (the usual occupancy-grid convention), whatever a summary says.
    Cells missing from the file are treated as blocked.
    """
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    header = _OCC_HEADER.match(lines[0]) if lines else None
    if header is None:
        raise DatasetFormatError(f"{path}: first line is not '[[x0, y0], [x1, y1]]::resolution'")
    x0, y0, _, _, resolution_m = (float(v) for v in header.groups())
    cells = [_OCC_CELL.match(ln) for ln in lines[1:]]
    if not cells or any(c is None for c in cells):
        bad = next((ln for ln, c in zip(lines[1:], cells) if c is None), "<no cells>")
        raise DatasetFormatError(f"{path}: cell line {bad!r} is not '[x, y]::v'")
    values = np.array([[float(c.group(1)), float(c.group(2)), int(c.group(3))] for c in cells])
    ix = np.rint((values[:, 0] - x0) / resolution_m).astype(int)
    iy = np.rint((values[:, 1] - y0) / resolution_m).astype(int)
    if (ix < 0).any() or (iy < 0).any():
        raise DatasetFormatError(f"{path}: cells lie before the origin ({x0}, {y0})")
    walkable = np.zeros((ix.max() + 1, iy.max() + 1), bool)
    walkable[ix, iy] = values[:, 2] != occupied_value
    return OccupancyGrid(x0, y0, resolution_m, walkable)
