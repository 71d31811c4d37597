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
        room_ids = np.append(self.rooms["id"].to_numpy(dtype=object), None)
        bed_ids = np.append(self.beds["id"].to_numpy(dtype=object), None)
        return pd.DataFrame({"room_id": pd.Series(room_ids[room_idx], dtype=object),
                             "bed_id": pd.Series(bed_ids[bed_idx], dtype=object)})

    def locate_idx(self, x_m, y_m) -> tuple[np.ndarray, np.ndarray]:
        """Positional indices into `rooms` / `beds` (−1 outside), the allocation-light hot path."""
        x = np.asarray(x_m, dtype=float).ravel()
        y = np.asarray(y_m, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"x_m and y_m differ in length ({x.size} vs {y.size})")
        return (self._lookup("room", self.rooms, x, y), self._lookup("bed", self.beds, x, y))

    def _lookup(self, kind: str, polys: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(x.size, -1, dtype=np.int32)
        if len(polys) == 0 or x.size == 0:
            return out
        grid = self._grid.get(kind) or self._build_grid(kind, polys)
        x0, y0, res, labels, edge = grid["x0"], grid["y0"], grid["res"], grid["labels"], grid["edge"]
        with np.errstate(invalid="ignore"):
            ix = np.floor((x - x0) / res)
            iy = np.floor((y - y0) / res)
        inside = (ix >= 0) & (iy >= 0) & (ix < labels.shape[1]) & (iy < labels.shape[0])
        ii, jj = iy[inside].astype(np.intp), ix[inside].astype(np.intp)
        out[inside] = labels[ii, jj]
        near_edge = np.zeros(x.size, dtype=bool)
        near_edge[inside] = edge[ii, jj]
        if near_edge.any():
            out[near_edge] = self._exact(grid["tree"], x[near_edge], y[near_edge])
        return out

    @staticmethod
    def _exact(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact point-in-polygon for a few points: STRtree candidates + `intersects` predicate
        (a point on the shared wall of two rooms goes to the first room, deterministically)."""
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
        geoms = polys["geometry"].to_numpy()
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        res = max(self.resolution_m, math.sqrt((maxx - minx) * (maxy - miny) / MAX_GRID_CELLS))
        nx, ny = int(math.ceil((maxx - minx) / res)) + 1, int(math.ceil((maxy - miny) / res)) + 1
        labels = np.full((ny, nx), -1, dtype=np.int32)
        cx = minx + (np.arange(nx) + 0.5) * res
        cy = miny + (np.arange(ny) + 0.5) * res
        for i, g in enumerate(geoms):   # per polygon (hundreds), each step vectorised over its cells
            gx0, gy0, gx1, gy1 = g.bounds
            j0, j1 = int((gx0 - minx) // res), int((gx1 - minx) // res) + 1
            i0, i1 = int((gy0 - miny) // res), int((gy1 - miny) // res) + 1
            sub_x, sub_y = np.meshgrid(cx[j0:j1], cy[i0:i1])
            hit = shapely.contains_xy(g, sub_x, sub_y)
            block = labels[i0:i1, j0:j1]
            block[hit & (block < 0)] = i
        # A cell is trusted only when its 8 neighbours carry the same label; boundaries pass
        # through untrusted cells, whose points get the exact test.
        padded = np.pad(labels, 1, mode="edge")
        edge = np.zeros_like(labels, dtype=bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    edge |= padded[1 + di:1 + di + ny, 1 + dj:1 + dj + nx] != labels
        grid = {"x0": minx, "y0": miny, "res": res, "labels": labels, "edge": edge,
                "tree": shapely.STRtree(geoms)}
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
