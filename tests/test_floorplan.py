import json

import numpy as np
import pytest
import shapely
from hypothesis import given, settings, strategies as st

from core.errors import FloorPlanError
from core.floorplan import Building, FloorPlan, project_lonlat
from tests.helpers import sample_site


def square(fid, x0, y0, x1, y1, **props):
    return {"type": "Feature", "properties": {"id": fid, **props},
            "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}}


PLAN = {"type": "FeatureCollection", "features": [
    square("R1", 0, 0, 10, 10, type="room"), square("R2", 10, 0, 20, 10, type="room"),
    square("B1", 1, 1, 2, 3, type="bed", room_id="R1"), square("Z1", 10, 0, 12, 2, type="zone")]}


@pytest.mark.parametrize("x,y,room,bed", [
    (5, 5, "R1", None), (1.5, 2, "R1", "B1"), (15, 5, "R2", None), (25, 5, None, None),
    (-0.01, 5, None, None), (9.99, 9.99, "R1", None), (10.01, 0.01, "R2", None), (np.nan, 3, None, None),
], ids=["room-centre", "in-bed", "second-room", "outside-right", "just-outside", "corner-inside",
        "across-wall", "nan"])
def test_locate_table(x, y, room, bed):
    out = FloorPlan.from_geojson(PLAN, floor_id="F").locate([x], [y])
    assert out.loc[0, "room_id"] == room
    assert out.loc[0, "bed_id"] == bed


def test_locate_accepts_path_and_string(tmp_path):
    p = tmp_path / "plan.geojson"
    p.write_text(json.dumps(PLAN))
    a = FloorPlan.from_geojson(p).locate([5], [5])
    b = FloorPlan.from_geojson(json.dumps(PLAN)).locate([5], [5])
    assert a.loc[0, "room_id"] == b.loc[0, "room_id"] == "R1"


@pytest.mark.parametrize("bad,match", [
    ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
    ({"type": "FeatureCollection", "features": [square("A", 0, 0, 1, 1, type="room"), square("A", 2, 2, 3, 3, type="room")]},
     "duplicate room ids"),
    ({"type": "FeatureCollection", "features": [square("A", 0, 0, 1, 1, type="room"), square("B", 0, 0, 1, 1, type="bed", room_id="X")]},
     "unknown rooms"),
], ids=["not-collection", "duplicate-room", "bed-in-unknown-room"])
def test_bad_plans_raise_precise_errors(bad, match):
    with pytest.raises(FloorPlanError, match=match):
        FloorPlan.from_geojson(bad)


def test_crs84_is_projected_to_metres():
    # a 0.001° × 0.001° square at 56.46° N: 111.2 m north-south, 61.5 m east-west
    lon0, lat0 = -2.978, 56.46
    plan = FloorPlan.from_geojson({"type": "FeatureCollection", "features": [
        square("R", lon0, lat0, lon0 + 0.001, lat0 + 0.001, type="room")]})
    x0, y0, x1, y1 = plan.bounds
    assert plan.origin_lonlat == (lon0, lat0)
    assert x1 - x0 == pytest.approx(111.195 * np.cos(np.radians(lat0)), rel=1e-3)
    assert y1 - y0 == pytest.approx(111.195, rel=1e-3)
    assert plan.locate([30], [50]).loc[0, "room_id"] == "R"


def test_sample_site_has_what_a_ward_needs():
    site = sample_site()
    assert len(site.floors) >= 2 and len(site.wards) >= 3
    assert len(site.beds) >= 60
    types = set(site.rooms["room_type"])
    for needed in ["corridor", "nurses_station", "medication", "dirty_utility", "equipment_store", "staff_room", "bay", "single"]:
        assert needed in types
    counts = site.entities["kind"].value_counts()
    assert counts["staff"] >= 38 and counts["patient"] == 60 and counts["device"] == 80
    assert {"nurse", "doctor", "hca", "porter", "cleaner"} <= set(site.entities["subtype"])
    # every reader antenna sits inside the room it claims
    for fid, plan in site.floors.items():
        r = site.readers[site.readers["floor_id"] == fid]
        got = plan.locate(r["x_m"], r["y_m"])
        assert (got["room_id"].to_numpy() == r["room_id"].to_numpy()).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_locate_matches_shapely_exactly_away_from_walls(seed):
    plan = sample_site().floors["F1"]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 98, 4000)
    y = rng.uniform(-2, 19, 4000)
    got, _ = plan.locate_idx(x, y)
    geoms = plan.rooms["geometry"].to_numpy()
    ref = np.full(x.size, -1)
    for i, g in enumerate(geoms):
        hit = shapely.contains_xy(g, x, y) & (ref < 0)
        ref[hit] = i
    walls = shapely.union_all(shapely.boundary(geoms))
    far = shapely.distance(walls, shapely.points(x, y)) > 0.01
    assert (got[far] == ref[far]).all()


@pytest.mark.external
def test_every_level_of_a_real_wrld_building_loads_and_draws(external_dir):
    from ui.figures import base_figure
    b = Building.from_wrld(external_dir / "wrld_westport_house_indoor" / "westport-house" / "main.json")
    assert len(b.floors) == 7
    for fid, plan in b.floors.items():
        x0, y0, x1, y1 = plan.bounds
        assert 0 <= x0 and 0 <= y0 and x1 < 70 and y1 < 70, fid      # inside the 50 m × 63 m footprint, in metres
        assert x1 - x0 > 15 and y1 - y0 > 15, fid                   # upper levels are smaller, none degenerate
        fig = base_figure(plan)
        assert sum(int(np.isfinite(np.asarray(t.x, dtype=float)).sum()) for t in fig.data if t.x is not None) > 20
    level2 = b.floors["westport-house-floor-2"]
    assert {"room", "bathroom"} <= set(level2.rooms["type"])
    c = level2.rooms.geometry.iloc[0].representative_point()
    assert level2.locate([c.x], [c.y]).loc[0, "room_id"] == level2.rooms["id"].iloc[0]


def test_project_lonlat_origin_is_zero():
    x, y = project_lonlat([10.0], [50.0], 10.0, 50.0)
    assert x[0] == 0 and y[0] == 0
