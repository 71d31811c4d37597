"""Seeded generator of the sample hospital's clinical reference data for the alarm inbox (committed
in `sample_data/`; regenerate with `python -m core.sample_clinical`). Nothing here is real.

Written files (all CSV):
  storage_units.csv      drug fridge (2-8 °C), freezer, CRT cupboard in each ward's medication room,
                         one extra vaccine fridge on Ward C; sensor ids and positions
  drugs.csv              ~60 RFID-tagged drug packs: name, storage class, protect-from-light, home
  bins.csv               waste bins in the dirty utility rooms and sharps boxes in the bays, with the
                         WHO categories they accept
  waste_items.csv        tagged waste items / bags already in the bins at the start
  patient_monitoring.csv per patient: continuous monitor or intermittent observations, baseline vital
                         signs, diabetic, wander risk (geofence)

The `incident` column names which row plays a part in a scripted demo incident
(core.feeds.sensors); the rules never read it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import SAMPLE_DIR
from core.site import Site, load_site

# (suffix, kind, storage class, name, position as fraction of the medication room's box)
UNITS = [("FRIDGE", "fridge", "refrigerated", "drug fridge", (0.2, 0.88)),
         ("FREEZER", "freezer", "frozen", "freezer", (0.5, 0.88)),
         ("CRT", "cupboard", "crt", "drug cupboard", (0.85, 0.5))]
EXTRA_UNITS = {"WC": [("VFRIDGE", "fridge", "refrigerated", "vaccine fridge", (0.2, 0.35))]}
UNIT_INCIDENTS = {"WA-FRIDGE": "door_left_open", "WB-FREEZER": "compressor_failure",
                  "WC-FRIDGE": "logger_offline", "WC-CRT": "humid_store"}

# (name, storage class, protect from light). Storage classes per the products' SmPC sections 6.4.
REFRIGERATED = [("Insulin aspart 100 units/mL pen", True), ("Insulin glargine 100 units/mL pen", True),
                ("Insulin human (soluble) vial", True), ("Influenza vaccine (inactivated)", True),
                ("Hepatitis B vaccine", True), ("Tetanus/diphtheria vaccine", True),
                ("Suxamethonium 50 mg/mL ampoule", False), ("Rocuronium 10 mg/mL vial", False),
                ("Lorazepam 4 mg/mL ampoule", True), ("Epoetin alfa prefilled syringe", True),
                ("Filgrastim prefilled syringe", True), ("Latanoprost eye drops", True),
                ("Chloramphenicol 0.5% eye drops", False), ("Carboprost 250 mcg ampoule", False),
                ("Liraglutide pen", True), ("Oxytocin 10 units/mL ampoule", False)]
FROZEN = [("Elasomeran COVID-19 mRNA vaccine", True), ("Varicella vaccine (live)", True),
          ("Dinoprostone 10 mg vaginal insert", False)]
CRT = [("Paracetamol 500 mg tablets", False), ("Amoxicillin 500 mg capsules", False),
       ("Co-amoxiclav 1.2 g IV vial", False), ("Ceftriaxone 1 g vial", True), ("Furosemide 20 mg/2 mL ampoule", True),
       ("Morphine sulfate 10 mg/mL ampoule", True), ("Oxycodone 5 mg capsules", False),
       ("Ondansetron 4 mg/2 mL ampoule", True), ("Metoclopramide 10 mg ampoule", True),
       ("Enoxaparin 40 mg syringe", False), ("Heparin 5,000 units/mL", False), ("Salbutamol 2.5 mg nebules", True),
       ("Ipratropium 500 mcg nebules", True), ("Prednisolone 5 mg tablets", False),
       ("Hydrocortisone 100 mg vial", False), ("Amiodarone 150 mg/3 mL ampoule", True), ("Digoxin 125 mcg tablets", False),
       ("Metformin 500 mg tablets", False), ("Gliclazide 80 mg tablets", False), ("Omeprazole 20 mg capsules", False),
       ("Apixaban 5 mg tablets", False), ("Gentamicin 80 mg/2 mL ampoule", False), ("Vancomycin 1 g vial", False),
       ("Naloxone 400 mcg/mL ampoule", True), ("Adrenaline 1 mg/mL ampoule", True),
       ("Glyceryl trinitrate spray", False), ("Phytomenadione 10 mg/mL ampoule", True),
       ("Potassium chloride 15% ampoule", False), ("Magnesium sulfate 50% ampoule", False),
       ("Lactulose oral solution", False), ("Senna 7.5 mg tablets", False)]
N_DRUGS = 60
DRUG_INCIDENT = "left_out_of_fridge"          # a refrigerated pack left in Ward B's CRT cupboard

# Dirty utility bins: (suffix, container, accepts, name, capacity items, position in the room box)
DU_BINS = [("GEN", "bag", "general", "General waste (black bag)", 60, (0.2, 0.25)),
           ("INF", "bag", "infectious|pathological", "Infectious waste (orange bag)", 40, (0.5, 0.25)),
           ("SHP", "sharps_box", "sharps", "Sharps box", 30, (0.8, 0.25)),
           ("CYT", "sharps_box", "sharps|cytotoxic", "Cytotoxic sharps (purple lid)", 20, (0.2, 0.6)),
           ("PHA", "bin", "pharmaceutical", "Pharmaceutical waste (blue lid)", 25, (0.8, 0.6))]
BIN_INCIDENTS = {"WA-DU-GEN": "sharps_in_general", "WB-DU-INF": "overdue_infectious",
                 "WC-B2-SHP": "filling_sharps_box"}
ITEM_KINDS = {"general": ["paper towels", "packaging"], "infectious": ["soiled dressing", "used gloves bag"],
              "pathological": ["tissue sample bag"], "sharps": ["used needle", "cannula", "lancet"],
              "cytotoxic": ["cytotoxic syringe"], "pharmaceutical": ["part-used vial", "expired tablets"]}

# Baseline vital signs (NEWS2 0-2 mostly), drawn around these centres.
BASE = {"resp_rate": 16.0, "spo2": 96.5, "systolic_bp": 128.0, "pulse": 76.0, "temp_c": 36.9}
PATIENT_INCIDENTS = [("WA", "continuous", "deteriorating"), ("WB", "continuous", "new_confusion"),
                     ("WC", "continuous", "monitor_dropout"), ("WB", "intermittent", "late_obs"),
                     ("WA", "intermittent", "hypo")]


@dataclass(frozen=True)
class Clinical:
    storage_units: pd.DataFrame       # location_id, name, ward_id, room_id, floor_id, kind, storage_class, sensor_id, x_m, y_m, incident
    drugs: pd.DataFrame               # drug_id, tag_id, name, storage_class, protect_from_light, home_location_id, ward_id, incident
    bins: pd.DataFrame                # bin_id, tag_id, name, ward_id, room_id, floor_id, x_m, y_m, container, accepts, capacity_items, incident
    waste_items: pd.DataFrame         # item_id, tag_id, category, description, ward_id, bin_id, age_h
    patients: pd.DataFrame            # patient_id, ward_id, bed_id, monitoring, obs_interval_h, baseline vitals, diabetic, wander_risk, incident

    @property
    def disposal_rooms(self) -> set[str]:
        """Designated disposal areas: rooms holding a bin (dirty utility rooms, bays with a sharps box)."""
        return set(self.bins["room_id"])


def _epc(rng: np.random.Generator, prefix: str) -> str:
    return prefix + "".join(rng.choice(list("0123456789ABCDEF"), size=24 - len(prefix)))


def _box(site: Site, room_id: str) -> tuple[float, float, float, float, str]:
    floor = site.rooms.set_index("room_id").at[room_id, "floor_id"]
    geom = site.floors[floor].rooms.set_index("id").at[room_id, "geometry"]
    return (*geom.bounds, floor)


def _at(box, frac) -> tuple[float, float]:
    x0, y0, x1, y1, _ = box
    return round(x0 + frac[0] * (x1 - x0), 2), round(y0 + frac[1] * (y1 - y0), 2)


def _units(site: Site) -> list[dict]:
    rows = []
    for ward in site.wards["ward_id"]:
        room = f"{ward}-MED"
        box = _box(site, room)
        for suffix, kind, cls, name, frac in UNITS + EXTRA_UNITS.get(ward, []):
            loc = f"{ward}-{suffix}"
            x, y = _at(box, frac)
            rows.append({"location_id": loc, "name": f"Ward {ward[-1]} {name}", "ward_id": ward, "room_id": room,
                         "floor_id": box[4], "kind": kind, "storage_class": cls, "sensor_id": f"ENV-{loc}",
                         "x_m": x, "y_m": y, "incident": UNIT_INCIDENTS.get(loc, "")})
    return rows


def _drugs(rng: np.random.Generator, units: list[dict]) -> list[dict]:
    by_class = {"refrigerated": REFRIGERATED, "frozen": FROZEN, "crt": CRT}
    homes = {c: [u for u in units if u["storage_class"] == c] for c in by_class}
    # Every refrigerated and frozen product once, CRT products fill the rest (most stock is CRT).
    catalogue = [(n, "refrigerated", lt) for n, lt in REFRIGERATED] + [(n, "frozen", lt) for n, lt in FROZEN]
    # Common CRT products are stocked on more than one ward: cycle through a shuffled list.
    order = rng.permutation(len(CRT))
    catalogue += [(CRT[order[k % len(CRT)]][0], "crt", CRT[order[k % len(CRT)]][1])
                  for k in range(N_DRUGS - len(catalogue))]
    rows = []
    for i, (name, cls, light) in enumerate(catalogue):
        home = homes[cls][i % len(homes[cls])]
        incident = DRUG_INCIDENT if (cls == "refrigerated" and home["ward_id"] == "WB"
                                     and not any(r["incident"] for r in rows)) else ""
        rows.append({"drug_id": f"DRG{i + 1:03d}", "tag_id": _epc(rng, "E2D0"), "name": name, "storage_class": cls,
                     "protect_from_light": light, "home_location_id": home["location_id"], "ward_id": home["ward_id"],
                     "incident": incident})
    return rows


def _bins(rng: np.random.Generator, site: Site) -> list[dict]:
    rows = []
    for ward in site.wards["ward_id"]:
        du = f"{ward}-DU"
        box = _box(site, du)
        for suffix, container, accepts, name, cap, frac in DU_BINS:
            bid = f"{du}-{suffix}"
            x, y = _at(box, frac)
            rows.append({"bin_id": bid, "tag_id": _epc(rng, "E2B1"), "name": f"{name} · {du}", "ward_id": ward,
                         "room_id": du, "floor_id": box[4], "x_m": x, "y_m": y, "container": container,
                         "accepts": accepts, "capacity_items": cap, "incident": BIN_INCIDENTS.get(bid, "")})
        bays = site.rooms[(site.rooms["ward_id"] == ward) & (site.rooms["room_type"] == "bay")]["room_id"]
        for bay in sorted(bays):
            bbox = _box(site, bay)
            bid = f"{bay}-SHP"
            x, y = _at(bbox, (0.92, 0.12))
            rows.append({"bin_id": bid, "tag_id": _epc(rng, "E2B1"), "name": f"Sharps box · {bay}", "ward_id": ward,
                         "room_id": bay, "floor_id": bbox[4], "x_m": x, "y_m": y, "container": "sharps_box",
                         "accepts": "sharps", "capacity_items": 30, "incident": BIN_INCIDENTS.get(bid, "")})
    return rows


def _items(rng: np.random.Generator, bins: list[dict]) -> list[dict]:
    rows = []
    for b in bins:
        cats = b["accepts"].split("|")
        for _ in range(int(rng.integers(1, 5))):
            cat = cats[int(rng.integers(len(cats)))]
            desc = ITEM_KINDS[cat][int(rng.integers(len(ITEM_KINDS[cat])))]
            rows.append({"item_id": f"WI{len(rows) + 1:03d}", "tag_id": _epc(rng, "E2C0"), "category": cat,
                         "description": desc, "ward_id": b["ward_id"], "bin_id": b["bin_id"],
                         "age_h": round(float(rng.uniform(0.5, 20.0)), 2)})
    return rows


def _vital(rng, key: str, spread: float, ndigits: int = 0) -> float:
    return round(float(BASE[key] + rng.normal(0, spread)), ndigits)


def _patients(rng: np.random.Generator, site: Site) -> list[dict]:
    pts = site.patients.sort_values("patient_id")
    incidents = {}
    for ward, monitoring, name in PATIENT_INCIDENTS:
        free = [p for p in pts[pts["ward_id"] == ward]["patient_id"] if p not in incidents]
        incidents[free[len(incidents) % len(free)]] = (monitoring, name)
    rows = []
    for pid, ward, bed, fall in zip(pts["patient_id"], pts["ward_id"], pts["bed_id"], pts["fall_risk"]):
        monitoring, incident = incidents.get(pid, ("continuous" if rng.random() < 0.1 else "intermittent", ""))
        diabetic = incident == "hypo" or bool(rng.random() < 0.15)
        # late_obs: RR 21 scores 2 (RCP Chart 1, standards §1.1 [V]) -> "low" band, 4-6-hourly obs,
        # so a set taken late becomes overdue after 6 h.
        rr = 21.0 if incident == "late_obs" else _vital(rng, "resp_rate", 1.5)
        rows.append({"patient_id": pid, "ward_id": ward, "bed_id": bed, "monitoring": monitoring,
                     # RCP Chart 3 (standards §1.2 [V]): 12-hourly at NEWS2 0, 4-6-hourly at 1-4; the
                     # sample ward observes everyone 4-5-hourly so only the scripted patient is late.
                     "obs_interval_h": 4.0 if incident == "late_obs" else float(rng.choice([4.0, 5.0])),
                     "resp_rate": rr, "spo2": min(100.0, _vital(rng, "spo2", 1.0)),
                     "on_oxygen": bool(ward == "WB" and rng.random() < 0.3 and incident == ""),
                     "systolic_bp": _vital(rng, "systolic_bp", 10.0), "pulse": _vital(rng, "pulse", 8.0),
                     "temp_c": _vital(rng, "temp_c", 0.3, 1), "consciousness": "A",
                     "glucose_mmol_l": round(float(rng.uniform(5.5, 9.0)), 1) if diabetic else "",
                     "diabetic": diabetic, "wander_risk": bool(fall and rng.random() < 0.5),
                     "incident": incident})
    return rows


def generate(site: Site, seed: int = 20261122) -> Clinical:
    rng = np.random.default_rng(seed)
    units = _units(site)
    bins = _bins(rng, site)
    return Clinical(pd.DataFrame(units), pd.DataFrame(_drugs(rng, units)), pd.DataFrame(bins),
                    pd.DataFrame(_items(rng, bins)), pd.DataFrame(_patients(rng, site)))


FILES = {"storage_units": "storage_units.csv", "drugs": "drugs.csv", "bins": "bins.csv",
         "waste_items": "waste_items.csv", "patients": "patient_monitoring.csv"}


def write(out_dir: Path = SAMPLE_DIR, seed: int = 20261122) -> Clinical:
    c = generate(load_site(out_dir), seed)
    for attr, name in FILES.items():
        df: pd.DataFrame = getattr(c, attr)
        with open(out_dir / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(df.columns))
            w.writeheader()
            w.writerows(df.to_dict("records"))
    return c


def _bool(s: pd.Series) -> pd.Series:
    return s.astype(str).str.lower().eq("true")


def load_clinical(folder: str | Path = SAMPLE_DIR) -> Clinical:
    """Read the committed clinical sample (used by the alarm service, the sensor simulator and pages)."""
    folder = Path(folder)
    read = {k: pd.read_csv(folder / f, dtype=str, keep_default_na=False) for k, f in FILES.items()}
    units = read["storage_units"].astype({"x_m": float, "y_m": float})
    drugs = read["drugs"].assign(protect_from_light=lambda d: _bool(d["protect_from_light"]))
    bins = read["bins"].astype({"x_m": float, "y_m": float, "capacity_items": int})
    items = read["waste_items"].astype({"age_h": float})
    p = read["patients"]
    num = ["obs_interval_h", "resp_rate", "spo2", "systolic_bp", "pulse", "temp_c"]
    p = p.astype({c: float for c in num}).assign(
        on_oxygen=_bool(p["on_oxygen"]), diabetic=_bool(p["diabetic"]), wander_risk=_bool(p["wander_risk"]),
        glucose_mmol_l=pd.to_numeric(p["glucose_mmol_l"].replace("", None), errors="coerce"))
    return Clinical(units, drugs, bins, items, p)


if __name__ == "__main__":
    write()
    print(f"clinical sample written to {SAMPLE_DIR}")
