"""Seeded generator of the sample hospital in `sample_data/` (committed; regenerate with
`python -m core.sample_site`). Nothing here is real: names are drawn from small invented lists.

St Mary's (fictional), two floors:
  F1: Ward A (acute medical) and Ward B (respiratory), a lift lobby
  F2: Ward C (surgical), a lift lobby
Each ward: four 4-bed bays and six single rooms (22 beds), nurses' station, medication room (drug
fridge, freezer, cupboard), dirty utility (waste), equipment store, staff room and staff toilet
(privacy zones), patient toilets, and a corridor. Local metres, origin at the floor's south-west corner.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import SAMPLE_DIR

WARD_W_M = 45.0
CORRIDOR_Y = (7.0, 10.0)
FLOOR_H_M = 17.0
SITE_TZ = "Europe/London"

WARDS = [("WA", "Ward A · Acute Medical", "F1", 0.0),
         ("WB", "Ward B · Respiratory", "F1", 45.0),
         ("WC", "Ward C · Surgical", "F2", 0.0)]
FLOORS = [("F1", "Floor 1", 1, 96.0), ("F2", "Floor 2", 2, 51.0)]

# (room suffix, room_type, name, width_m) along the south side (y 0..7) and north side (y 10..17)
SOUTH = [*[(f"S{i}", "single", f"Single {i}", 4.0) for i in range(1, 7)],
         ("DU", "dirty_utility", "Dirty utility", 4.0), ("EQ", "equipment_store", "Equipment store", 4.0),
         ("SR", "staff_room", "Staff room", 5.0), ("ST", "staff_toilet", "Staff toilet", 3.0),
         ("PT1", "patient_toilet", "Patient bathroom", 5.0)]
NORTH = [*[(f"B{i}", "bay", f"Bay {i}", 8.0) for i in range(1, 5)],
         ("NS", "nurses_station", "Nurses' station", 5.0), ("MED", "medication", "Medication room", 5.0),
         ("PT2", "patient_toilet", "Patient toilet", 3.0)]
PRIVACY_ROOM_TYPES = {"staff_room", "staff_toilet"}

GIVEN = ["Amara", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hamza", "Isla", "Jon", "Kasia", "Liam",
         "Maya", "Nadia", "Owen", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wes", "Yara",
         "Zoe", "Alfie", "Bea", "Cai", "Dora", "Emil", "Fern", "Gus", "Hana", "Ivo", "Jude", "Kofi"]
FAMILY = ["Abbott", "Bell", "Carter", "Dawson", "Ellis", "Fraser", "Gill", "Hughes", "Iqbal", "Jones",
          "Khan", "Lowe", "Mensah", "Novak", "Okafor", "Price", "Quirke", "Reid", "Shah", "Turner",
          "Usman", "Vaughan", "Walsh", "Young", "Zielinski", "Ahmed", "Brennan", "Costa", "Doyle", "Evans"]

STAFF_PER_WARD = [("charge_nurse", 1), ("nurse", 6), ("hca", 2), ("doctor", 2)]
STAFF_SITE = [("porter", 3), ("cleaner", 3), ("pharmacist", 1)]
DEVICES = [("infusion_pump", 30), ("monitor", 20), ("wheelchair", 15), ("mobile_bed", 15)]
PASSIVE_DEVICE_TYPES = {"wheelchair", "mobile_bed"}   # passive RFID: seen by readers, not RTLS x,y


@dataclass
class Generated:
    floors: dict[str, dict]
    site: dict
    readers: list[dict]
    staff: list[dict]
    patients: list[dict]
    devices: list[dict]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def _feature(props: dict, ring: list) -> dict:
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": ring}}


def _ward_features(ward_id: str, ox: float) -> tuple[list[dict], list[dict]]:
    """Rooms, beds, zones of one ward, and its reader antennas."""
    feats, readers = [], []
    for side, spec in (("S", SOUTH), ("N", NORTH)):
        x = ox
        y0, y1 = (0.0, CORRIDOR_Y[0]) if side == "S" else (CORRIDOR_Y[1], FLOOR_H_M)
        for suffix, rtype, name, w in spec:
            rid = f"{ward_id}-{suffix}"
            door_y = y1 if side == "S" else y0
            feats.append(_feature({"type": "room", "id": rid, "name": name, "room_type": rtype,
                                   "ward_id": ward_id, "door_x": x + w / 2, "door_y": door_y}, _rect(x, y0, x + w, y1)))
            reader = f"RD-{rid}"
            readers.append({"reader_id": reader, "antenna": 1, "room_id": rid, "bed_id": "",
                            "x_m": round(x + w / 2, 2), "y_m": round((y0 + y1) / 2, 2)})
            beds = 4 if rtype == "bay" else 1 if rtype == "single" else 0
            for b in range(beds):
                bx0 = x + 0.5 + 2.0 * b if beds > 1 else x + 1.5
                by0, by1 = (y1 - 2.4, y1 - 0.3) if side == "N" else (y0 + 0.3, y0 + 2.4)
                bid = f"{rid}-{b + 1}" if beds > 1 else f"{rid}-1"
                feats.append(_feature({"type": "bed", "id": bid, "room_id": rid, "name": f"{name} bed {b + 1}" if beds > 1 else f"{name} bed",
                                       "ward_id": ward_id}, _rect(bx0, by0, bx0 + 1.0, by1)))
                readers.append({"reader_id": reader, "antenna": b + 2, "room_id": rid, "bed_id": bid,
                                "x_m": bx0 + 0.5, "y_m": round((by0 + by1) / 2, 2)})
            if rtype in PRIVACY_ROOM_TYPES:
                feats.append(_feature({"type": "zone", "id": f"Z-PRIV-{rid}", "zone_type": "privacy",
                                       "name": f"Privacy zone: {name}", "ward_id": ward_id}, _rect(x, y0, x + w, y1)))
            if rtype == "dirty_utility":
                feats.append(_feature({"type": "zone", "id": f"Z-DISP-{rid}", "zone_type": "disposal",
                                       "name": f"Disposal area: {name}", "ward_id": ward_id}, _rect(x, y0, x + w, y1)))
            x += w
    cid = f"{ward_id}-COR"
    feats.append(_feature({"type": "room", "id": cid, "name": "Corridor", "room_type": "corridor", "ward_id": ward_id,
                           "door_x": ox + WARD_W_M / 2, "door_y": sum(CORRIDOR_Y) / 2},
                          _rect(ox, CORRIDOR_Y[0], ox + WARD_W_M, CORRIDOR_Y[1])))
    for a, cx in enumerate(np.arange(ox + 5.0, ox + WARD_W_M, 10.0), start=1):
        readers.append({"reader_id": f"RD-{cid}", "antenna": a, "room_id": cid, "bed_id": "",
                        "x_m": float(cx), "y_m": sum(CORRIDOR_Y) / 2})
    return feats, readers


def _lobby(floor_id: str, x0: float) -> tuple[list[dict], list[dict]]:
    rid = f"{floor_id}-LIFT"
    feat = _feature({"type": "room", "id": rid, "name": "Lift lobby", "room_type": "lift_lobby", "ward_id": None,
                     "door_x": x0, "door_y": sum(CORRIDOR_Y) / 2}, _rect(x0, 0.0, x0 + 6.0, FLOOR_H_M))
    reader = {"reader_id": f"RD-{rid}", "antenna": 1, "room_id": rid, "bed_id": "", "x_m": x0 + 3.0, "y_m": 8.5}
    return [feat], [reader]


def _people(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    pairs = [(g, f) for g in GIVEN for f in FAMILY]
    idx = rng.choice(len(pairs), size=n, replace=False)
    return [pairs[i] for i in idx]


def _epc(rng: np.random.Generator) -> str:
    return "E280" + "".join(rng.choice(list("0123456789ABCDEF"), size=20))


def generate(seed: int = 20261121) -> Generated:
    rng = np.random.default_rng(seed)
    floors, readers = {}, []
    for floor_id, fname, level, width in FLOORS:
        feats = []
        for ward_id, _, wfloor, ox in WARDS:
            if wfloor == floor_id:
                f, r = _ward_features(ward_id, ox)
                feats += f
                readers += [dict(rr, floor_id=floor_id) for rr in r]
        f, r = _lobby(floor_id, width - 6.0)
        feats += f
        readers += [dict(rr, floor_id=floor_id) for rr in r]
        floors[floor_id] = {"type": "FeatureCollection", "name": fname, "floor_id": floor_id,
                            "crs": {"type": "name", "properties": {"name": "local-metres"}}, "features": feats}
    site = {"site_id": "stmarys", "name": "St Mary's (sample)", "timezone": SITE_TZ,
            "floors": [{"floor_id": f, "name": n, "level": lv, "file": f"floors/{f}.geojson"} for f, n, lv, _ in FLOORS],
            "wards": [{"ward_id": w, "name": n, "floor_id": fl} for w, n, fl, _ in WARDS]}

    names = _people(rng, 40 + 60)
    staff, k = [], 0
    for ward_id, *_ in WARDS:
        for role, n in STAFF_PER_WARD:
            for i in range(n):
                staff.append((role, ward_id, "day" if i % 2 == 0 else "night"))
    for role, n in STAFF_SITE:
        staff += [(role, "", "day" if i % 2 == 0 else "night") for i in range(n)]
    staff_rows = []
    for i, (role, ward_id, shift) in enumerate(staff):
        g, f = names[k]; k += 1
        staff_rows.append({"staff_id": f"S{i + 1:03d}", "tag_id": _epc(rng), "name": f"{g} {f}",
                           "short_name": f"{g[0]}{f[0]}", "role": role, "ward_id": ward_id, "shift": shift})

    # Added after the first release: drawn from a separate stream so existing ids and tags stay put.
    extra = np.random.default_rng(seed + 1)
    staff_rows.append({"staff_id": f"S{len(staff_rows) + 1:03d}", "tag_id": _epc(extra), "name": "Nell Okafor",
                       "short_name": "NO", "role": "ward_manager", "ward_id": "", "shift": "day"})

    bed_ids = [(ft["properties"]["id"], ft["properties"]["ward_id"]) for fc in floors.values()
               for ft in fc["features"] if ft["properties"]["type"] == "bed"]
    occupied = sorted(rng.choice(len(bed_ids), size=60, replace=False))
    patients = []
    for i, b in enumerate(occupied):
        g, f = names[k]; k += 1
        bed, ward = bed_ids[b]
        age = int(rng.integers(19, 96))
        patients.append({"patient_id": f"P{i + 1:03d}", "tag_id": _epc(rng), "mrn": f"MRN{4100000 + int(rng.integers(0, 899999)):07d}",
                         "given": g, "family": f, "short_name": f"{g[0]}.{f[0]}.",
                         "birth_date": f"{2026 - age}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
                         "sex": "female" if rng.random() < 0.5 else "male", "ward_id": ward, "bed_id": bed,
                         "fall_risk": bool(rng.random() < 0.25)})

    devices, n = [], 0
    ward_ids = [w for w, *_ in WARDS]
    for dtype, count in DEVICES:
        for i in range(count):
            n += 1
            ward = ward_ids[i % len(ward_ids)]
            status = "in_use" if dtype in ("infusion_pump", "monitor") and rng.random() < 0.6 else \
                     "cleaning" if rng.random() < 0.1 else "available"
            devices.append({"device_id": f"D{n:03d}", "tag_id": _epc(rng), "device_type": dtype,
                            "name": f"{dtype.replace('_', ' ').title()} {i + 1:02d}", "ward_id": ward,
                            "home_room_id": f"{ward}-EQ", "status": status})
    return Generated(floors, site, readers, staff_rows, patients, devices)


def write(out_dir: Path = SAMPLE_DIR, seed: int = 20261121) -> Generated:
    g = generate(seed)
    (out_dir / "floors").mkdir(parents=True, exist_ok=True)
    for fid, fc in g.floors.items():
        (out_dir / "floors" / f"{fid}.geojson").write_text(json.dumps(fc, indent=1) + "\n")
    (out_dir / "site.json").write_text(json.dumps(g.site, indent=2) + "\n")
    for name, rows in (("readers", g.readers), ("staff", g.staff), ("patients", g.patients), ("devices", g.devices)):
        with open(out_dir / f"{name}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return g


if __name__ == "__main__":
    write()
    print(f"sample site written to {SAMPLE_DIR}")
