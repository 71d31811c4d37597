"""FHIR R4 import for bedside context: `load(path)` → {patient id: PatientRecord}.

    records = core.fhir.load("bundle.json")                 # transaction / collection Bundle
    records, report = core.fhir.load_with_report("bulk/")  # folder of bulk-export NDJSON
"""
from core.fhir.model import (Administration, Allergy, Condition, DoseTiming, Encounter, EncounterLocation, Flag,
                             Medication, Observation, PatientRecord, PendingOrder, Result, age_years,
                             observations_frame)
from core.fhir.parse import FhirResourceError, parse_dt
from core.fhir.reader import ImportReport, load, load_with_report

__all__ = ["load", "load_with_report", "ImportReport", "FhirResourceError", "PatientRecord", "Allergy",
           "Medication", "DoseTiming", "Condition", "Encounter", "EncounterLocation", "Observation", "Result",
           "PendingOrder", "Administration", "Flag", "age_years", "observations_frame", "parse_dt"]
