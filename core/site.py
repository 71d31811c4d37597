"""The site description: floors (FloorPlan), wards, rooms, beds, reader antennas, and the tagged
entities (staff, patients, devices), read once from a folder such as `sample_data/`.

`Site` is static reference data; live state lives in the pipeline and the store.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.errors import FloorPlanError
from core.floorplan import FloorPlan

SHIFT_PATTERNS = {"day": ((7, 0), 12.5), "night": ((19, 0), 12.5)}   # start (local), length h


@dataclass
class Site:
    site_id: str
    name: str
    timezone: str
    floors: dict[str, FloorPlan]
    levels: dict[str, int]
    wards: pd.DataFrame        # ward_id, name, floor_id
    rooms: pd.DataFrame        # room_id, floor_id, ward_id, name, room_type, cx_m, cy_m, door_x_m, door_y_m
    beds: pd.DataFrame         # bed_id, room_id, floor_id, ward_id, name, cx_m, cy_m
    readers: pd.DataFrame      # reader_id, antenna, floor_id, room_id, bed_id, x_m, y_m
    entities: pd.DataFrame     # entity_id, kind, subtype, name, short_name, ward_id, home_id, status, shift
    tags: pd.DataFrame         # tag_id, entity_id, read_shape
    patients: pd.DataFrame     # patient_id, mrn, given, family, birth_date, sex, ward_id, bed_id, fall_risk

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def floor_of_ward(self, ward_id: str) -> str:
        return str(self.wards.set_index("ward_id").at[ward_id, "floor_id"])

    def shifts(self, now: datetime, days_back: int = 1, days_ahead: int = 1) -> pd.DataFrame:
        """Concrete shifts (staff_id, ward_id, start, end; tz-aware UTC) around `now` from each staff
        member's pattern, in the site's local time (so day shifts start at 07:00 on the ward clock)."""
        staff = self.entities[self.entities["kind"] == "staff"]
        local_day = now.astimezone(self.tz).date()
        rows = []
        for d in range(-days_back, days_ahead + 1):
            day = local_day + timedelta(days=d)
            for pattern, ((hh, mm), hours) in SHIFT_PATTERNS.items():
                start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=self.tz)
                who = staff[staff["shift"] == pattern]
                rows.append(pd.DataFrame({"staff_id": who["entity_id"].to_numpy(), "ward_id": who["ward_id"].to_numpy(),
                                          "start": pd.Timestamp(start).tz_convert("UTC"),
                                          "end": pd.Timestamp(start + timedelta(hours=hours)).tz_convert("UTC")}))
        return pd.concat(rows, ignore_index=True)

    def on_duty(self, now: datetime) -> pd.Series:
        """Boolean Series indexed by staff_id: on a shift at `now`."""
        sh = self.shifts(now, 1, 0)
        ts = pd.Timestamp(now).tz_convert("UTC")
        on = sh[(sh["start"] <= ts) & (ts < sh["end"])]["staff_id"].unique()
        staff_ids = self.entities.loc[self.entities["kind"] == "staff", "entity_id"]
        return pd.Series(staff_ids.isin(on).to_numpy(), index=staff_ids.to_numpy())


def load_site(folder: str | Path) -> Site:
    """Read a site folder (site.json, floors/*.geojson, readers.csv, staff/patients/devices.csv)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "site.json").read_text())
    except FileNotFoundError as exc:
        raise FloorPlanError(f"no site.json in {folder} (run `python -m core.sample_site`)") from exc
    floors, levels, room_rows, bed_rows = {}, {}, [], []
    for fl in meta["floors"]:
        plan = FloorPlan.from_geojson(folder / fl["file"], floor_id=fl["floor_id"], name=fl["name"])
        floors[plan.floor_id], levels[plan.floor_id] = plan, int(fl["level"])
        rooms = plan.rooms
        raw = {str(f["properties"]["id"]): f["properties"]
               for f in json.loads((folder / fl["file"]).read_text())["features"]}
        cent = np.array([(g.centroid.x, g.centroid.y) for g in rooms["geometry"]])
        room_rows.append(pd.DataFrame({
            "room_id": rooms["id"], "floor_id": plan.floor_id, "ward_id": rooms["ward_id"],
            "name": rooms["name"], "room_type": rooms["room_type"].fillna("room"),
            "cx_m": cent[:, 0], "cy_m": cent[:, 1],
            "door_x_m": [raw[r].get("door_x", c[0]) for r, c in zip(rooms["id"], cent)],
            "door_y_m": [raw[r].get("door_y", c[1]) for r, c in zip(rooms["id"], cent)]}))
        beds = plan.beds
        if len(beds):
            bc = np.array([(g.centroid.x, g.centroid.y) for g in beds["geometry"]])
            bed_rows.append(pd.DataFrame({"bed_id": beds["id"], "room_id": beds["room_id"], "floor_id": plan.floor_id,
                                          "ward_id": beds["ward_id"], "name": beds["name"],
                                          "cx_m": bc[:, 0], "cy_m": bc[:, 1]}))
    readers = pd.read_csv(folder / "readers.csv", dtype={"reader_id": str, "room_id": str, "bed_id": str,
                                                         "floor_id": str})
    readers["bed_id"] = readers["bed_id"].where(readers["bed_id"].notna(), None)
    staff = pd.read_csv(folder / "staff.csv", dtype=str, keep_default_na=False)
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    patients["fall_risk"] = patients["fall_risk"].str.lower() == "true"
    devices = pd.read_csv(folder / "devices.csv", dtype=str, keep_default_na=False)
    entities = pd.concat([
        pd.DataFrame({"entity_id": staff["staff_id"], "kind": "staff", "subtype": staff["role"], "name": staff["name"],
                      "short_name": staff["short_name"], "ward_id": staff["ward_id"].replace("", None),
                      "home_id": None, "status": None, "shift": staff["shift"]}),
        pd.DataFrame({"entity_id": patients["patient_id"], "kind": "patient", "subtype": "inpatient",
                      "name": patients["given"] + " " + patients["family"], "short_name": patients["short_name"],
                      "ward_id": patients["ward_id"], "home_id": patients["bed_id"], "status": None, "shift": None}),
        pd.DataFrame({"entity_id": devices["device_id"], "kind": "device", "subtype": devices["device_type"],
                      "name": devices["name"], "short_name": devices["name"], "ward_id": devices["ward_id"],
                      "home_id": devices["home_room_id"], "status": devices["status"], "shift": None}),
    ], ignore_index=True)
    from core.sample_site import PASSIVE_DEVICE_TYPES
    dev_shape = np.where(devices["device_type"].isin(PASSIVE_DEVICE_TYPES), "reader", "position")
    tags = pd.concat([
        pd.DataFrame({"tag_id": staff["tag_id"], "entity_id": staff["staff_id"], "read_shape": "position"}),
        pd.DataFrame({"tag_id": patients["tag_id"], "entity_id": patients["patient_id"], "read_shape": "position"}),
        pd.DataFrame({"tag_id": devices["tag_id"], "entity_id": devices["device_id"], "read_shape": dev_shape}),
    ], ignore_index=True)
    return Site(site_id=meta["site_id"], name=meta["name"], timezone=meta.get("timezone", "UTC"),
                floors=floors, levels=levels, wards=pd.DataFrame(meta["wards"]),
                rooms=pd.concat(room_rows, ignore_index=True),
                beds=pd.concat(bed_rows, ignore_index=True) if bed_rows else pd.DataFrame(),
                readers=readers, entities=entities, tags=tags, patients=patients)
