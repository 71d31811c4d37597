"""Code systems and vital-sign codes the importer recognises. Every code cites its source."""
from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"       # identifier type (MR = medical record number)

# Vital signs by code → (canonical name with unit, canonical UCUM unit).
# LOINC codes and UCUM units: standards.md 5.5 (FHIR R4 observation-vitalsignresult value set) [V].
VITALS: dict[str, tuple[str, str]] = {
    "9279-1": ("resp_rate_per_min", "/min"),     # respiratory rate
    "8867-4": ("pulse_per_min", "/min"),         # heart rate
    "59408-5": ("spo2_pct", "%"),                # SpO2 by pulse oximetry (US Core)
    "2708-6": ("spo2_pct", "%"),                 # oxygen saturation (FHIR vital-signs profile code)
    "8480-6": ("sbp_mmhg", "mm[Hg]"),            # systolic BP (component of 85354-9 / 55284-4)
    "8462-4": ("dbp_mmhg", "mm[Hg]"),            # diastolic BP
    "8310-5": ("temp_c", "Cel"),                 # body temperature
    "8331-1": ("temp_c", "Cel"),                 # oral temperature (older Synthea, shared/external README)
    "3150-0": ("inspired_o2_pct", "%"),          # inhaled O2 concentration, standards.md 5.5 [R]
    "1104441000000107": ("consciousness", ""),   # SNOMED ACVPU scale (NEWS2 input), standards.md 1.1 [V]
    "67775-7": ("consciousness", ""),            # LOINC "Level of responsiveness" (loinc.org; not in standards.md)
    "722742002": ("room_air", ""),               # SNOMED "breathing room air", standards.md 1.1/5.5 [V]
    "2339-0": ("glucose_mmol_l", "mmol/L"),      # glucose mass/volume in blood (loinc.org; not in standards.md)
    "15074-8": ("glucose_mmol_l", "mmol/L"),     # glucose moles/volume in blood (loinc.org; not in standards.md)
    "8302-2": ("height_cm", "cm"),               # standards.md 5.5
    "29463-7": ("weight_kg", "kg"),              # standards.md 5.5
    "39156-5": ("bmi_kg_m2", "kg/m2"),           # standards.md 5.5
}
# Panels whose components carry the values (BP panel 85354-9 per standards.md 5.5; 55284-4 in Synthea).
PANELS = {"85354-9", "55284-4", "85353-1"}

# Glucose: mg/dL → mmol/L divides by 18.016 (molar mass of glucose 180.16 g/mol; 1 mmol/L = 18.016 mg/dL).
GLUCOSE_MG_DL_PER_MMOL_L = 18.016

# Flags meaning "at risk of falls": SNOMED 129839007 "At risk for falls" (SNOMED CT browser; not in
# standards.md). Flags whose text mentions falls are recognised too, because local codes vary.
FALL_RISK_CODES = {"129839007"}
