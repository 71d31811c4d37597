"""Floor plans: GeoJSON rooms, beds and zones → shapely geometry, and a vectorised point → room/bed
lookup.

`FloorPlan.from_geojson(obj_or_path)` takes a FeatureCollection whose features carry
`properties.type` ("room", "bed", "zone", walls/doors/... are kept for drawing only) and
`properties.id` (beds also `room_id`), in local metres or in CRS84 longitude/latitude (projected to
metres on a local tangent plane; see `project_lonlat`).

`FloorPlan.locate(x_m, y_m)` answers for arrays of points with a rasterised label grid (one array
lookup per point) and an exact shapely fallback for points in cells near a boundary, so answers are
exact wherever the grid could be wrong. See bench/bench_floorplan.py for its speed against a shapely
loop and geopandas.sjoin.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from core.errors import FloorPlanError

EARTH_RADIUS_M = 6_371_008.8        # IUGG mean Earth radius
ROOM_TYPES = {"room", "bathroom"}   # features that answer "which room" (WRLD calls toilets bathroom)
BED_TYPE = "bed"
ZONE_TYPE = "zone"
MAX_GRID_CELLS = 8_000_000


def project_lonlat(lon, lat, origin_lon: float, origin_lat: float) -> tuple[np.ndarray, np.ndarray]:
    """CRS84 lon/lat [°] → local metres east/north of the origin (equirectangular tangent plane).

    Over a building (< 1 km) the error is far below RTLS accuracy (< 1 cm), so no projection library
    is needed.
    """
    k = math.pi / 180.0 * EARTH_RADIUS_M
    x = (np.asarray(lon, dtype=float) - origin_lon) * k * math.cos(math.radians(origin_lat))
    y = (np.asarray(lat, dtype=float) - origin_lat) * k
    return x, y


def _looks_like_lonlat(obj: dict, bounds: tuple[float, float, float, float]) -> bool:
    crs = ((obj.get("crs") or {}).get("properties") or {}).get("name", "")
    if crs:
        return "CRS84" in crs.upper() or "4326" in crs
    minx, miny, maxx, maxy = bounds
    # RFC 7946 GeoJSON without a crs member is lon/lat; a plan in metres is never under 0.1 m wide.
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90 and (maxx - minx) < 0.1 and (maxy - miny) < 0.1


@dataclass
class FloorPlan:
    """One floor: rooms, beds, zones and decoration, all in metres."""
    floor_id: str
    name: str
    features: pd.DataFrame                      # id, type, name, room_type, ward_id, room_id, geometry
    origin_lonlat: tuple[float, float] | None = None
    resolution_m: float = 0.05
    _grid: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---------- loading ----------
    @classmethod
    def from_geojson(cls, obj_or_path: Any, *, floor_id: str | None = None, name: str | None = None,
                     origin_lonlat: tuple[float, float] | None = None) -> "FloorPlan":
        """Load a FeatureCollection (dict, JSON string or path). CRS84 input is projected to metres
        around `origin_lonlat` (default: the south-west corner of this floor's extent)."""
        obj, source = _read_json(obj_or_path)
        if obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
            raise FloorPlanError(f"{source}: not a GeoJSON FeatureCollection")
        rows = []
        for i, feat in enumerate(obj["features"]):
            geom_obj = (feat or {}).get("geometry")
            if not geom_obj:
                continue  # WRLD 'no_geometry' labels and the like: nothing to draw or locate
            try:
                geom = shape(geom_obj)
            except Exception as exc:  # shapely raises several types for bad coordinates
                raise FloorPlanError(f"{source}: feature {i} has invalid geometry: {exc}") from exc
            props = feat.get("properties") or {}
            rows.append({"id": None if props.get("id") is None else str(props.get("id")),
                         "type": str(props.get("type") or "unknown"),
                         "name": props.get("name") or props.get("roomnumber"),
                         "room_type": props.get("room_type"),
                         "zone_type": props.get("zone_type"),
                         "ward_id": props.get("ward_id"),
                         "room_id": None if props.get("room_id") is None else str(props["room_id"]),
                         "geometry": geom})
        if not rows:
            raise FloorPlanError(f"{source}: no features with geometry")
        feats = pd.DataFrame(rows)
        geoms = feats["geometry"].to_numpy()
        if _looks_like_lonlat(obj, tuple(shapely.total_bounds(geoms))):
            if origin_lonlat is None:
                b = shapely.total_bounds(geoms)
                origin_lonlat = (float(b[0]), float(b[1]))
            geoms = _project_geoms(geoms, origin_lonlat)
            feats["geometry"] = geoms
        else:
            origin_lonlat = None
        feats["geometry"] = shapely.make_valid(feats["geometry"].to_numpy())
        fid = floor_id or obj.get("floor_id") or (Path(source).stem if source != "<object>" else "floor")
        plan = cls(floor_id=str(fid), name=name or obj.get("name") or str(fid), features=feats,
                   origin_lonlat=origin_lonlat)
        plan._check()
        return plan

    def _check(self) -> None:
        rooms, beds = self.rooms, self.beds
        if rooms["id"].isna().any():
            raise FloorPlanError(f"{self.floor_id}: a room has no id")
        dup = rooms["id"][rooms["id"].duplicated()]
        if len(dup):
            raise FloorPlanError(f"{self.floor_id}: duplicate room ids {sorted(set(dup))[:5]}")
        if len(beds):
            if beds["id"].isna().any() or beds["id"].duplicated().any():
                raise FloorPlanError(f"{self.floor_id}: beds need unique ids")
            missing = set(beds["room_id"].dropna()) - set(rooms["id"])
            if missing:
                raise FloorPlanError(f"{self.floor_id}: beds refer to unknown rooms {sorted(missing)[:5]}")

    # ---------- views ----------
    @cached_property
    def rooms(self) -> pd.DataFrame:
        f = self.features
        rooms = f[f["type"].isin(ROOM_TYPES) & (shapely.area(f["geometry"].to_numpy()) > 0)]
        return rooms.reset_index(drop=True)

    @cached_property
    def beds(self) -> pd.DataFrame:
        return self.features[self.features["type"] == BED_TYPE].reset_index(drop=True)

    @cached_property
    def zones(self) -> pd.DataFrame:
        return self.features[self.features["type"] == ZONE_TYPE].reset_index(drop=True)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in shapely.total_bounds(self.features["geometry"].to_numpy()))

    # ---------- lookup ----------
    def locate(self, x_m, y_m) -> pd.DataFrame:
        """Room id and bed id of every point (vectorised); None outside any room / bed."""
        room_idx, bed_idx = self.locate_idx(x_m, y_m)
        # two fresh object columns, handed over without a consolidating copy
        cols = {"room_id": self._ids_or_none("room").take(room_idx), "bed_id": self._ids_or_none("bed").take(bed_idx)}
        return pd.DataFrame({k: pd.Series(v, dtype=object, copy=False) for k, v in cols.items()}, copy=False)

    def _ids_or_none(self, kind: str) -> np.ndarray:
        """Ids with a trailing None, so index −1 (outside) maps to None in one take."""
        key = f"{kind}_ids"
        if key not in self._grid:
            ids = (self.rooms if kind == "room" else self.beds)["id"].to_numpy(dtype=object)
            self._grid[key] = np.append(ids, None)
        return self._grid[key]

    def locate_idx(self, x_m, y_m) -> tuple[np.ndarray, np.ndarray]:
        """Positional indices into `rooms` / `beds` (−1 outside), the allocation-light hot path."""
        x = np.asarray(x_m, dtype=float).ravel()
        y = np.asarray(y_m, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"x_m and y_m differ in length ({x.size} vs {y.size})")
        if x.size == 0:
            return np.full(0, -1, dtype=np.int32), np.full(0, -1, dtype=np.int32)
        # rooms and beds share one frame and one int64 label grid (room label in the high 32 bits):
        # one random memory access per point instead of two
        both = self._both_labels().take(_cell_of(self._frame, x, y))
        return (self._finish("room", (both >> 32).astype(np.int32), x, y),
                self._finish("bed", both.astype(np.int32), x, y))            # low 32 bits

    def _both_labels(self) -> np.ndarray:
        if "both" not in self._grid:
            halves = []
            for kind, polys in (("room", self.rooms), ("bed", self.beds)):
                grid = self._grid.get(kind) or (self._build_grid(kind, polys) if len(polys) else None)
                size = (self._frame["nx"] + 2) * (self._frame["ny"] + 2)
                halves.append(grid["labels"] if grid else np.full(size, -1, dtype=np.int32))
            self._grid["both"] = (halves[0].astype(np.int64) << 32) | (halves[1].astype(np.int64) & 0xFFFFFFFF)
        return self._grid["both"]

    def _finish(self, kind: str, out: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact answers for the points whose cell a boundary crosses."""
        uncertain = np.flatnonzero(out <= -2)
        if uncertain.size:
            out[uncertain] = _resolve(self._grid[kind], -2 - out[uncertain], x[uncertain], y[uncertain])
        return out

    @cached_property
    def _frame(self) -> dict[str, Any]:
        """The raster frame shared by the room and bed grids: origin, 1/resolution and size."""
        geoms = np.concatenate([self.rooms["geometry"].to_numpy(), self.beds["geometry"].to_numpy()])
        if geoms.size == 0:
            return {"x0": 0.0, "y0": 0.0, "inv": 1.0 / self.resolution_m, "nx": 1, "ny": 1}
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        res = max(self.resolution_m, math.sqrt((maxx - minx) * (maxy - miny) / MAX_GRID_CELLS))
        nx, ny = int(math.ceil((maxx - minx) / res)) + 1, int(math.ceil((maxy - miny) / res)) + 1
        return {"x0": float(minx), "y0": float(miny), "inv": 1.0 / res, "nx": nx, "ny": ny}

    @staticmethod
    def _exact(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact point-in-polygon with an STRtree (first polygon that intersects the point): the
        reference the grid agrees with, kept for callers that hold a tree."""
        res = np.full(x.size, -1, dtype=np.int32)
        pts = shapely.points(x, y)
        src, hit = tree.query(pts, predicate="intersects")
        if src.size:
            order = np.lexsort((hit, src))
            src, hit = src[order], hit[order]
            first = np.r_[True, src[1:] != src[:-1]]
            res[src[first]] = hit[first]
        return res

    def _build_grid(self, kind: str, polys: pd.DataFrame) -> dict[str, Any]:
        """Label grid over the plan (one border cell each side, where off-plan points land).

        A cell's label is the first polygon that contains the whole cell (−1: none). Cells that a
        polygon boundary crosses are "uncertain": they hold −2 − slot, and the slot lists the
        polygons (ascending, only those before the label) whose boundary crosses the cell; a point
        there is tested against those few polygons exactly. So the answer is exactly "the first
        polygon that intersects the point", as an STRtree query would give, at array-lookup speed."""
        geoms = polys["geometry"].to_numpy()
        shapely.prepare(geoms)
        grid = dict(self._frame, geoms=geoms)
        minx, miny, res, nx, ny = grid["x0"], grid["y0"], 1.0 / grid["inv"], grid["nx"], grid["ny"]
        cells, owner = _crossed_cells(grid, geoms)
        labels = np.full((ny + 2, nx + 2), -1, dtype=np.int32)
        crossed = np.zeros((ny + 2, nx + 2), dtype=bool)
        bounds = shapely.bounds(geoms)
        starts = np.searchsorted(owner, np.arange(len(geoms) + 1))
        for i, g in enumerate(geoms):   # per polygon (hundreds), each step vectorised over its cells
            mine = cells[starts[i]:starts[i + 1]]
            crossed.flat[mine] = True
            j0, j1 = _cell_range(bounds[i, 0], bounds[i, 2], minx, res, nx)
            i0, i1 = _cell_range(bounds[i, 1], bounds[i, 3], miny, res, ny)
            cx = minx + (np.arange(j0, j1) - 0.5) * res          # centres (index 1 is the first inner cell)
            cy = miny + (np.arange(i0, i1) - 0.5) * res
            hit = shapely.contains_xy(g, cx[None, :], cy[:, None])
            block = labels[i0:i1, j0:j1]
            block[hit & (block < 0) & ~crossed[i0:i1, j0:j1]] = i
            crossed.flat[mine] = False
        # uncertain cells: candidates are the crossing polygons that come before the cell's label
        full = labels.ravel()[cells]
        keep = (full < 0) | (owner < full)
        cells, owner = cells[keep], owner[keep]
        order = np.lexsort((owner, cells))
        cells, owner = cells[order], owner[order]
        slot_cells, ptr = np.unique(cells, return_index=True)
        slots = {"ptr": np.append(ptr, cells.size).astype(np.int64), "cand": owner.astype(np.int32),
                 "full": labels.ravel()[slot_cells].copy()}
        lab = labels.ravel()
        # cells crossed only by polygons after their label keep the label (they are certain)
        lab[slot_cells] = -2 - np.arange(slot_cells.size, dtype=np.int32)
        grid.update(labels=lab, **slots)
        self._grid[kind] = grid
        return grid

    def zones_at(self, x_m: float, y_m: float) -> list[str]:
        z = self.zones
        if not len(z):
            return []
        hit = shapely.intersects_xy(z["geometry"].to_numpy(), x_m, y_m)
        return list(z["id"][hit])

    # ---------- drawing ----------
    def outline_xy(self, types: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Exterior rings of the given feature types as one NaN-separated pair of arrays, so a whole
        layer is a single plotly trace (hundreds of add_shape calls are quadratic)."""
        f = self.features[self.features["type"].isin(set(types))]
        return _rings_xy(f["geometry"].to_numpy())



# ---------- raster lookup helpers ----------
_EPS_CELL = 1e-6    # boundary samples this close to a cell edge (in cells) mark both cells


def _fcell(grid: dict, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional cell coordinates, border included (inner cells start at 1). Query points and
    boundary samples go through this one formula, so rounding treats them alike."""
    fx = (x - grid["x0"]) * grid["inv"] + 1.0
    fy = (y - grid["y0"]) * grid["inv"] + 1.0
    return fx, fy


def _cell_of(grid: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Flat cell index of every point; NaN and off-plan points land in a border cell (label −1)."""
    fx, fy = _fcell(grid, x, y)
    nx, ny = grid["nx"], grid["ny"]
    ix = np.fmin(np.fmax(fx, 0.0), nx + 1.0).astype(np.intp)     # fmax/fmin map NaN to the border too
    iy = np.fmin(np.fmax(fy, 0.0), ny + 1.0).astype(np.intp)
    iy *= nx + 2
    iy += ix
    return iy


def _cell_range(lo: float, hi: float, origin: float, res: float, n: int) -> tuple[int, int]:
    """Inner-cell index range [a, b) covering the interval [lo, hi]."""
    a = max(1, int((lo - origin) / res + 1.0) - 1)
    b = min(n + 1, int((hi - origin) / res + 1.0) + 2)
    return a, b


def _crossed_cells(grid: dict, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat cell, polygon) pairs, sorted by polygon, for every cell that a polygon's boundary
    touches (a superset is fine: it only costs an exact test).

    Boundaries are sampled every half cell; two consecutive samples are then in the same or
    neighbouring cells, and the segment between them stays inside the 2 × 2 block they span, so
    marking each sample's cell (both cells when it sits on a cell edge) and, on diagonal steps, the
    two other cells of the block covers every cell the boundary passes through."""
    parts = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts[0], return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    owner_of_coord = parts[1][ring_part[coord_ring]]
    same = coord_ring[1:] == coord_ring[:-1]                      # consecutive vertices of one ring
    a, b, own = coords[:-1][same], coords[1:][same], owner_of_coord[:-1][same]
    step = 0.5 / grid["inv"]
    k = np.maximum(1, np.ceil(np.hypot(*(b - a).T) / step).astype(np.int64))
    seg = np.repeat(np.arange(len(a)), k + 1)
    t = (np.arange(seg.size) - np.repeat(np.cumsum(k + 1) - (k + 1), k + 1)) / np.repeat(k, k + 1)
    px = a[seg, 0] + t * (b[seg, 0] - a[seg, 0])
    py = a[seg, 1] + t * (b[seg, 1] - a[seg, 1])
    fx, fy = _fcell(grid, px, py)
    w = grid["nx"] + 2
    ix = np.stack([np.floor(fx - _EPS_CELL), np.floor(fx + _EPS_CELL)]).astype(np.int64)
    iy = np.stack([np.floor(fy - _EPS_CELL), np.floor(fy + _EPS_CELL)]).astype(np.int64)
    flat = [iy[i] * w + ix[j] for i in (0, 1) for j in (0, 1)]
    own_s = own[seg]
    owners = [own_s] * 4
    nxt = np.flatnonzero(seg[1:] == seg[:-1])                     # consecutive samples of one segment
    cx, cy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    flat += [cy[nxt] * w + cx[nxt + 1], cy[nxt + 1] * w + cx[nxt]]
    owners += [own_s[nxt], own_s[nxt]]
    cells, owner = np.concatenate(flat), np.concatenate(owners)
    key = np.unique(owner * (w * (grid["ny"] + 2)) + cells)       # sorted by polygon, then cell
    return key % (w * (grid["ny"] + 2)), key // (w * (grid["ny"] + 2))


def _resolve(grid: dict, slot: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact answer for points in uncertain cells: the first candidate polygon that intersects the
    point, else the cell's label. One vectorised round per candidate rank (a cell has a few)."""
    ptr, cand, geoms = grid["ptr"], grid["cand"], grid["geoms"]
    out = grid["full"][slot]
    pos, end = ptr[slot], ptr[slot + 1]
    todo = np.arange(slot.size)
    while todo.size:
        todo = todo[pos[todo] < end[todo]]
        if not todo.size:
            break
        c = cand[pos[todo]]
        hit = shapely.intersects_xy(geoms[c], x[todo], y[todo])
        out[todo[hit]] = c[hit]
        todo = todo[~hit]
        pos[todo] += 1
    return out

def _rings_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    polys = shapely.get_parts(geoms)
    polys = polys[shapely.get_type_id(polys) == 3]
    if polys.size == 0:
        return np.empty(0), np.empty(0)
    rings = shapely.get_exterior_ring(polys)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    breaks = np.flatnonzero(np.diff(ring_idx)) + 1
    xs = np.insert(coords[:, 0], breaks, np.nan)
    ys = np.insert(coords[:, 1], breaks, np.nan)
    return xs, ys


def _project_geoms(geoms: np.ndarray, origin: tuple[float, float]) -> np.ndarray:
    def tx(coords: np.ndarray) -> np.ndarray:
        x, y = project_lonlat(coords[:, 0], coords[:, 1], origin[0], origin[1])
        return np.column_stack([x, y])
    return shapely.transform(geoms, tx)


def _read_json(obj_or_path: Any) -> tuple[dict, str]:
    if isinstance(obj_or_path, dict):
        return obj_or_path, "<object>"
    if isinstance(obj_or_path, str) and obj_or_path.lstrip().startswith("{"):
        return json.loads(obj_or_path), "<string>"
    path = Path(obj_or_path)
    try:
        return json.loads(path.read_text(encoding="utf-8")), str(path)
    except FileNotFoundError as exc:
        raise FloorPlanError(f"floor plan not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise FloorPlanError(f"{path}: not valid JSON ({exc})") from exc


@dataclass
class Building:
    """Several levels sharing one local origin (so x, y line up across floors)."""
    building_id: str
    name: str
    floors: dict[str, FloorPlan]
    levels: dict[str, int]

    @classmethod
    def from_wrld(cls, main_json: str | Path) -> "Building":
        """Load a WRLD indoor map (main.json listing levels, one CRS84 GeoJSON per level)."""
        main_json = Path(main_json)
        meta, _ = _read_json(main_json)
        files = [(lvl, main_json.parent / lvl["filename"]) for lvl in meta.get("levels", [])]
        if not files:
            raise FloorPlanError(f"{main_json}: no levels listed")
        all_b = []
        for _, path in files:
            obj, _ = _read_json(path)
            all_b.append(shapely.total_bounds(np.array([shape(f["geometry"]) for f in obj["features"]
                                                        if f.get("geometry")])))
        b = np.vstack(all_b)
        origin = (float(b[:, 0].min()), float(b[:, 1].min()))
        floors, levels = {}, {}
        for lvl, path in files:
            fid = str(lvl.get("id") or path.stem)
            floors[fid] = FloorPlan.from_geojson(path, floor_id=fid, origin_lonlat=origin,
                                                 name=lvl.get("readable_name") or lvl.get("name"))
            levels[fid] = int(lvl.get("z_order", len(levels)))
        return cls(str(meta.get("id", main_json.parent.name)), str(meta.get("name", "")), floors, levels)
