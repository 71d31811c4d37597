"""Read a FHIR Bundle (transaction, collection, batch, searchset) or a folder of bulk-export NDJSON,
resolve references, and assemble one PatientRecord per Patient.

References resolved: `urn:uuid:` / absolute fullUrls inside bundles, relative `Type/id`, absolute
`http…/Type/id[/_history/n]`, conditional `Type?identifier=system|value` and logical
`{"identifier": {...}}` references (via an identifier index). Unknown resource types are counted and
skipped; a malformed resource becomes a FhirResourceError in the report; the import goes on."""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from core.errors import FhirError
from core.fhir import parse as P
from core.fhir.model import PatientRecord
from core.fhir.parse import FhirResourceError

log = logging.getLogger(__name__)

BULK_LOG_FILES = {"log.ndjson"}     # bulk-export server logs, not resources
ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
DROP_STATUSES = {"entered-in-error", "cancelled"}  # recorded by mistake / never happened: never shown

# resource type → (patient reference element, parser, PatientRecord list)
CLINICAL = {
    "AllergyIntolerance": ("patient", P.allergy),
    "MedicationRequest": ("subject", P.medication),
    "Condition": ("subject", P.condition),
    "Encounter": ("subject", None),
    "Observation": ("subject", P.observations),
    "DiagnosticReport": ("subject", P.report),
    "ServiceRequest": ("subject", P.order),
    "MedicationAdministration": ("subject", P.administration),
    "Flag": ("subject", P.flag),
}
INDEX_ONLY = {"Patient", "Location"}


@dataclass(frozen=True)
class Entry:
    source: str
    position: int
    full_url: str | None
    resource: dict
    type: str
    id: str | None


@dataclass
class ImportReport:
    """What an import read, used, skipped and refused (counts per resource type)."""
    read: Counter = field(default_factory=Counter)
    used: Counter = field(default_factory=Counter)        # attached to a patient, or indexed (Patient, Location)
    skipped: Counter = field(default_factory=Counter)     # resource types Wardsight does not use
    excluded: Counter = field(default_factory=Counter)    # "Type:status" read but deliberately not shown
    errors: list[FhirResourceError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    @property
    def patients(self) -> int:
        return self.used["Patient"]

    def error_reasons(self) -> list[str]:
        return [str(e) for e in self.errors]


# ---------------------------------------------------------------- reading files

def _identity(resource: dict, full_url: str | None, request: dict | None) -> str | None:
    if resource.get("id"):
        return str(resource["id"])
    url = (request or {}).get("url") or ""
    if request and request.get("method") == "PUT" and "/" in url and "?" not in url:
        return url.split("/")[1]
    if full_url:
        return full_url.rsplit(":", 1)[-1] if full_url.startswith("urn:") else full_url.rstrip("/").rsplit("/", 1)[-1]
    return None


def _entry(source: str, pos: int, doc: Any, full_url: str | None, request: dict | None,
           report: ImportReport) -> Entry | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        report.errors.append(FhirResourceError("not a FHIR resource (no resourceType)", source=source, position=pos))
        return None
    rtype = doc["resourceType"]
    report.read[rtype] += 1
    return Entry(source, pos, full_url, doc, rtype, _identity(doc, full_url, request))


def _read_ndjson(path: Path, report: ImportReport) -> list[Entry]:
    out = []
    for pos, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            report.errors.append(FhirResourceError(f"invalid JSON ({exc})", source=path.name, position=pos))
            continue
        entry = _entry(path.name, pos, doc, None, None, report)
        if entry:
            out.append(entry)
    return out


def _read_json(path: Path, report: ImportReport) -> list[Entry]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise FhirError(f"{path.name}: invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        entry = _entry(path.name, 0, doc, None, None, report)
        return [entry] if entry else []
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(f"{path.name}: Bundle.entry is not a list")
    out = []
    for pos, e in enumerate(entries):
        resource = e.get("resource") if isinstance(e, dict) else None
        if resource is None:
            report.errors.append(FhirResourceError("bundle entry has no resource", source=path.name, position=pos))
            continue
        entry = _entry(path.name, pos, resource, e.get("fullUrl"), e.get("request"), report)
        if entry:
            out.append(entry)
    return out


def read_entries(path: str | Path, report: ImportReport) -> list[Entry]:
    path = Path(path)
    if path.is_file():
        report.files.append(path.name)
        return _read_ndjson(path, report) if path.suffix == ".ndjson" else _read_json(path, report)
    if not path.is_dir():
        raise FhirError(f"{path}: no such FHIR file or folder")
    out: list[Entry] = []
    for f in sorted(path.iterdir()):
        if f.name in BULK_LOG_FILES or f.suffix not in (".ndjson", ".json"):
            report.ignored_files.append(f.name)
            continue
        report.files.append(f.name)
        try:
            out += _read_ndjson(f, report) if f.suffix == ".ndjson" else _read_json(f, report)
        except FhirError as exc:     # one unreadable file in a folder does not sink the others
            report.errors.append(FhirResourceError(str(exc), source=f.name))
    return out


# ---------------------------------------------------------------- references

class ReferenceIndex:
    def __init__(self, entries: list[Entry]):
        self.by_url: dict[str, tuple[str, str]] = {}
        self.by_identifier: dict[tuple[str, str | None, str], str] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        for e in entries:
            if e.id is None:
                continue
            key = (e.type, e.id)
            self.resources.setdefault(key, e.resource)
            if e.full_url:
                self.by_url[e.full_url] = key
            for ident in e.resource.get("identifier") or [] if e.type in INDEX_ONLY else []:
                if isinstance(ident, dict) and ident.get("value") is not None:
                    self.by_identifier.setdefault((e.type, ident.get("system"), str(ident["value"])), e.id)
                    self.by_identifier.setdefault((e.type, None, str(ident["value"])), e.id)

    def _by_identifier(self, rtype: str, system: str | None, value: str) -> tuple[str, str] | None:
        rid = self.by_identifier.get((rtype, system, value))
        return (rtype, rid) if rid else None

    def resolve(self, ref: Any) -> tuple[str, str] | None:
        if not isinstance(ref, dict):
            return None
        text = ref.get("reference")
        if not text:
            ident = ref.get("identifier") or {}
            rtype = ref.get("type")
            return self._by_identifier(rtype, ident.get("system"), str(ident.get("value"))) if rtype and ident else None
        if text.startswith("#"):
            return None                     # contained resource: not a patient-level link
        if text in self.by_url:
            return self.by_url[text]
        if text.startswith("urn:"):
            return None
        if "?" in text:
            rtype, query = text.split("?", 1)
            params = dict(parse_qsl(query))
            if "identifier" in params:
                system, _, value = params["identifier"].rpartition("|")
                return self._by_identifier(rtype.rsplit("/", 1)[-1], system or None, value)
            return ("_id" in params and (rtype.rsplit("/", 1)[-1], params["_id"])) or None
        parts = [p for p in text.split("/") if p]
        if "_history" in parts:
            parts = parts[:parts.index("_history")]
        return (parts[-2], parts[-1]) if len(parts) >= 2 else None

    def location(self, ref: Any) -> tuple[str | None, str | None, str | None]:
        """Location reference → (location id, physicalType code, first identifier value)."""
        key = self.resolve(ref)
        if key is None or key[0] != "Location":
            return None, None, None
        res = self.resources.get(key) or {}
        idents = [i.get("value") for i in res.get("identifier") or [] if isinstance(i, dict)]
        return key[1], P.concept(res.get("physicalType"))[1], (idents[0] if idents else None)


# ---------------------------------------------------------------- assembling records

def _mrn(resource: dict, fallback: str) -> str:
    """The MR-typed identifier (v2-0203 'MR'); else an official/usual one; else the first; else the id."""
    idents = [i for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    for i in idents:
        if any(c.get("code") == "MR" for c in ((i.get("type") or {}).get("coding") or [])):
            return str(i["value"])
    preferred = [i for i in idents if i.get("use") in ("official", "usual")]
    return str((preferred or idents)[0]["value"]) if idents else fallback


def _names(resource: dict) -> tuple[str, str]:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(chosen.get("given") or [])
    family = chosen.get("family") or ""
    if not (given or family) and chosen.get("text"):
        return chosen["text"], ""
    return given, family


def _patient_fields(e: Entry) -> dict:
    r = e.resource
    given, family = _names(r)
    return dict(id=e.id, mrn=_mrn(r, e.id), given=given, family=family,
                birth_date=P.parse_date(r.get("birthDate")), sex=r.get("gender"),
                deceased=P.parse_dt(r.get("deceasedDateTime"), "deceasedDateTime"),
                identifiers=tuple((i.get("system"), str(i["value"])) for i in r.get("identifier") or []
                                  if isinstance(i, dict) and i.get("value") is not None))


def _status_of(e: Entry) -> str | None:
    r = e.resource
    if "status" in r and isinstance(r["status"], str):
        return r["status"]
    return P.status_code(r.get("verificationStatus"))


def _fail(report: ImportReport, e: Entry, reason: str) -> None:
    report.errors.append(FhirResourceError(reason, source=e.source, position=e.position,
                                           resource_type=e.type, resource_id=e.id))


def _patients(entries: list[Entry], report: ImportReport) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for e in entries:
        if e.type != "Patient":
            continue
        if e.id is None:
            _fail(report, e, "Patient has neither id nor fullUrl")
            continue
        if e.id in out:
            _fail(report, e, "duplicate Patient id (first one kept)")
            continue
        try:
            out[e.id] = _patient_fields(e)
        except FhirResourceError as exc:
            _fail(report, e, exc.reason)
            continue
        report.used["Patient"] += 1
    return out


def _parse(e: Entry, index: ReferenceIndex):
    if e.type == "Encounter":
        return P.encounter(e.resource, index.resolve, index.location)
    return CLINICAL[e.type][1](e.resource, index.resolve)


def _sort_key(item) -> tuple:
    for attr in ("ts", "start", "authored", "issued", "effective", "onset", "recorded"):
        value = getattr(item, attr, None)
        if value is not None:
            return (0, value.timestamp())
    return (1, 0.0)


BUCKETS = {
    # a refuted allergy is not shown as active even if its clinicalStatus was left "active"
    "AllergyIntolerance": lambda x: ("allergies" if x.clinical_status == "active" and x.verification_status != "refuted"
                                     else "inactive_allergies"),
    "MedicationRequest": lambda x: "medications" if x.status == "active" else "medication_history",
    "Condition": lambda x: "conditions" if x.clinical_status in ACTIVE_CONDITION else "past_conditions",
    "Encounter": lambda x: "encounters",
    "Observation": lambda x: "observations",
    "DiagnosticReport": lambda x: "results",
    "ServiceRequest": lambda x: "pending_orders" if x.status == "active" else None,
    "MedicationAdministration": lambda x: "administrations",
    "Flag": lambda x: "flags" if x.status == "active" else None,
}


def _attach(e: Entry, index: ReferenceIndex, patients: dict[str, dict],
            lists: dict[str, defaultdict], report: ImportReport) -> None:
    status = _status_of(e)
    if status in DROP_STATUSES:
        report.excluded[f"{e.type}:{status}"] += 1
        return
    ref = e.resource.get(CLINICAL[e.type][0])
    key = index.resolve(ref)
    if key is None or key[0] != "Patient" or key[1] not in patients:
        _fail(report, e, f"{CLINICAL[e.type][0]} reference {ref!r} does not resolve to a Patient in this import")
        return
    try:
        parsed = _parse(e, index)
    except FhirResourceError as exc:
        _fail(report, e, exc.reason)
        return
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        _fail(report, e, f"malformed {e.type}: {type(exc).__name__}: {exc}")
        return
    items = parsed if isinstance(parsed, list) else [parsed]
    bucket = BUCKETS[e.type](items[0]) if items else "observations"
    if bucket is None:
        report.excluded[f"{e.type}:{status}"] += 1
        return
    lists[key[1]][bucket].extend(items)
    report.used[e.type] += 1


def assemble(entries: list[Entry], report: ImportReport) -> dict[str, PatientRecord]:
    index = ReferenceIndex(entries)
    patients = _patients(entries, report)
    lists: dict[str, defaultdict] = {pid: defaultdict(list) for pid in patients}
    for e in entries:
        if e.type in CLINICAL:
            _attach(e, index, patients, lists, report)
        elif e.type == "Location":
            report.used["Location"] += 1
        elif e.type != "Patient":
            report.skipped[e.type] += 1
    return {pid: PatientRecord(**fields, **{k: tuple(sorted(v, key=_sort_key)) for k, v in lists[pid].items()})
            for pid, fields in patients.items()}


def load_with_report(path: str | Path) -> tuple[dict[str, PatientRecord], ImportReport]:
    """Import `path` (Bundle JSON file, NDJSON file, or folder of them) → (records by Patient id, report)."""
    report = ImportReport()
    records = assemble(read_entries(path, report), report)
    if report.errors:
        log.warning("FHIR import of %s: %d resources refused (see ImportReport.errors)", path, len(report.errors))
    return records, report


def load(path: str | Path) -> dict[str, PatientRecord]:
    """Import `path` → {Patient.id: PatientRecord}. Refused resources are logged; use
    `load_with_report` to see them."""
    return load_with_report(path)[0]
