"""Alarm rules as data: one frozen record per alarm kind, storage class and waste category.

Nothing here computes anything; engine.py, vitals.py, drug_storage.py and waste.py read these
records, so a site can tune a threshold by building a new `RuleSet` (dataclasses.replace) without
touching logic. Every number taken from a standard cites /work/shared/reference/standards.md
(section and confidence tag [V]/[R]/[E]).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import pandas as pd

# IEC 60601-1-8 priorities (standards §4.1 [R]): high = immediate, medium = prompt, low = awareness.
PRIORITIES = ("high", "medium", "low")
PRIORITY_RANK = MappingProxyType({"low": 1, "medium": 2, "high": 3})

# Escalation ladder of roles (task brief; standards §4.4 [E] steps 0/2/3).
DEFAULT_LADDER = ("nurse", "charge_nurse", "ward_manager")

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S


@dataclass(frozen=True)
class EscalationPolicy:
    """`timeouts_s[k]`: seconds unacknowledged at level k before moving to level k+1."""
    priority: str
    timeouts_s: tuple[float, ...]

    def timeout_at(self, level: int) -> float | None:
        return self.timeouts_s[level] if level < len(self.timeouts_s) else None


ESCALATION = MappingProxyType({
    # standards §4.4 [E]: next recipient after HIGH 30 s / MEDIUM 60 s / LOW 120 s without ack,
    # then +60 s; the last step (unit manager) is "HIGH only".
    "high": EscalationPolicy("high", (30.0, 60.0)),
    "medium": EscalationPolicy("medium", (60.0,)),
    "low": EscalationPolicy("low", (120.0,)),
})


@dataclass(frozen=True)
class AlarmRule:
    """How alarms of one kind behave in the engine.

    hold_s: the condition must have been absent this long before the alarm clears (debounces
    flapping sensors). auto_clear False: only a person can resolve it (help requests).
    latching: IEC 60601-1-8 latching (§4.1 [R]) - a condition that ends unacknowledged stays
    visible as cleared_unack until someone acknowledges it.
    """
    kind: str
    priority: str
    hold_s: float
    description: str
    roles: tuple[str, ...] = DEFAULT_LADDER
    auto_clear: bool = True
    latching: bool = True


# Storage alarms go to a pharmacist and waste alarms to porters after the nurse/handler: the role
# matrix in standards §6.3 [E] gives pharmacists storage acks and waste handlers waste acks.
_STORAGE_LADDER = ("nurse", "pharmacist", "ward_manager")
_WASTE_LADDER = ("porter", "charge_nurse", "ward_manager")

_ALARM_RULES = (
    AlarmRule("vitals.news2", "medium", 0.0, "NEWS2 aggregate 5-6 (medium) or >=7 (high), RCP Chart 3 (§1.2 [V])"),
    AlarmRule("vitals.red_score", "medium", 0.0, "a single NEWS2 parameter scored 3: urgent ward-based response (§1.2 [V])"),
    AlarmRule("vitals.glucose", "medium", 0.0, "capillary glucose outside the hypo/hyper limits [E]"),
    AlarmRule("vitals.obs_overdue", "low", 0.0, "next observation set is later than the NEWS2 minimum monitoring frequency (§1.2 [V])"),
    AlarmRule("vitals.sensor_silent", "medium", 60.0, "continuous vital-sign monitor stopped reporting [E]"),
    AlarmRule("storage.excursion", "medium", 300.0, "drug storage environment outside the range of a drug stored there (§2 [V])", _STORAGE_LADDER),
    AlarmRule("storage.sensor_silent", "low", 120.0, "storage logger offline: technical alarm (§2.3 sketch [E])", _STORAGE_LADDER),
    AlarmRule("storage.drug_misplaced", "medium", 300.0, "a drug's tag is in a location whose storage class does not suit it [E]", _STORAGE_LADDER),
    AlarmRule("waste.wrong_bin", "medium", 120.0, "item in a bin that does not accept its WHO category (§3.1 [V])", _WASTE_LADDER),
    AlarmRule("waste.wrong_place", "low", 120.0, "item or bin outside a designated disposal area (§3.2 sketch (c) [E])", _WASTE_LADDER),
    AlarmRule("waste.overdue", "low", 300.0, "held beyond the category's storage limit or bin >= 3/4 full (§3.1 [R])", _WASTE_LADDER),
    AlarmRule("location.geofence", "medium", 30.0, "tag left or entered a forbidden zone [E]"),
    AlarmRule("location.duress", "high", 30.0, "staff duress button pressed [E]", auto_clear=False),
    AlarmRule("tag.low_battery", "low", 600.0, "tag battery low: technical alarm [E]"),
    AlarmRule("tag.silent", "low", 300.0, "tag not heard for longer than the unknown threshold [E]"),
    AlarmRule("security.cloned_tag", "high", 600.0, "impossible travel / simultaneous presence of one tag (§6.1 [E])", ("charge_nurse", "ward_manager")),
    AlarmRule("help.request", "high", 0.0, "a clinician asked for help from a role", auto_clear=False),
)
ALARM_RULES: Mapping[str, AlarmRule] = MappingProxyType({r.kind: r for r in _ALARM_RULES})


@dataclass(frozen=True)
class StorageRule:
    """Limits of one storage class.

    Outside [low_c, high_c] continuously for >= min_duration_s is an excursion; at or beyond an
    extreme it is an excursion at once. None means "no such limit".
    """
    storage_class: str
    label: str
    low_c: float
    high_c: float
    min_duration_s: float
    extreme_low_c: float | None = None
    extreme_high_c: float | None = None
    max_rh_pct: float | None = None
    mkt_max_c: float | None = None
    silent_after_s: float = 1800.0   # CDC: loggers record at least every 30 min (§2.2 [V])
    lux_max: float = 50.0            # [E] light reaching a light-sensitive drug (§2.3 "protect from light" [V])


STORAGE_RULES: Mapping[str, StorageRule] = MappingProxyType({
    # USP freezer -25..-10 °C (§2.1 [V]); a thawing unit (>= 0 °C) is an excursion at once [E].
    "frozen": StorageRule("frozen", "freezer -25 to -10 °C", -25.0, -10.0, 900.0, extreme_high_c=0.0),
    # USP/CDC refrigerator 2..8 °C (§2.1, §2.2 [V]); any freezing reading (<= 0 °C) at once (§2.3
    # sketch, Kansas/Maryland criteria [V]); > 15 °C leaves the USP controlled-cold excursion
    # allowance 2..15 °C (§2.1 [V]). 15 min duration: Maryland treats <= 20 min door-ajar
    # excursions as non-reportable (§2.2 [V]) so 15 min catches them before that [E].
    "refrigerated": StorageRule("refrigerated", "refrigerator 2 to 8 °C", 2.0, 8.0, 900.0,
                                extreme_low_c=0.0, extreme_high_c=15.0),
    # USP CRT 20..25 °C with excursions 15..30 °C allowed and MKT <= 25 °C (§2.1 [V]); so the
    # duration rule uses the excursion band, > 40 °C ("excessive heat", §2.1 [V]) is at once, RH
    # <= 60 % (WHO good storage, §2.3 [V]).
    "crt": StorageRule("crt", "controlled room temperature 20 to 25 °C", 15.0, 30.0, 900.0,
                       extreme_high_c=40.0, max_rh_pct=60.0, mkt_max_c=25.0),
})

# Which location classes may hold a drug of a class [E]: exact match only. (USP lets "cool" items go
# in a refrigerator, §2.1 [V]; add "cool": ("cool", "refrigerated") if a site uses that class.)
COMPATIBLE_LOCATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "frozen": ("frozen",), "refrigerated": ("refrigerated",), "crt": ("crt",),
})

# WHO categories (standards §3.1 [V]).
WASTE_CATEGORIES = ("sharps", "infectious", "pathological", "pharmaceutical", "cytotoxic",
                    "chemical", "radioactive", "general")
HAZARDOUS = frozenset(WASTE_CATEGORIES) - {"general"}

# WHO 2014 maximum time from generation to treatment without refrigeration (§3.1 table [R]).
WHO_CLIMATE_LIMITS_S = MappingProxyType({
    "temperate_cool": 72 * HOUR_S, "temperate_warm": 48 * HOUR_S,
    "hot_cool": 48 * HOUR_S, "hot_hot": 24 * HOUR_S,
})


@dataclass(frozen=True)
class WasteRule:
    category: str
    max_storage_s: float | None
    basis: str


def waste_rules(climate: str = "temperate_warm") -> Mapping[str, WasteRule]:
    """Per-category storage limits for a climate row of the WHO 2014 table."""
    if climate not in WHO_CLIMATE_LIMITS_S:
        raise ValueError(f"unknown climate {climate!r}; one of {sorted(WHO_CLIMATE_LIMITS_S)}")
    who = WHO_CLIMATE_LIMITS_S[climate]
    rows = (
        WasteRule("infectious", who, f"WHO 2014 storage table, {climate} (§3.1 [R])"),
        WasteRule("pathological", who, f"WHO 2014 storage table, {climate} (§3.1 [R])"),
        # Safety boxes up to 1 week, locked, without an on-site incinerator (§3.1 [V] OU/WHO page).
        WasteRule("sharps", 7 * DAY_S, "WHO/OU training: safety boxes up to 1 week (§3.1 [V])"),
        WasteRule("general", 72 * HOUR_S, "[E] collected with domestic refuse at least every 3 days"),
        WasteRule("pharmaceutical", 30 * DAY_S, "[E] ward hold before pharmacy return (US Subpart P allows 1 y, §3.2 [R])"),
        WasteRule("cytotoxic", 30 * DAY_S, "[E] ward hold before hazardous collection (§3.2 [R])"),
        WasteRule("chemical", 30 * DAY_S, "[E] ward hold before hazardous collection"),
        WasteRule("radioactive", None, "decay-in-storage is set by the radiation protection adviser [E]"),
    )
    return MappingProxyType({r.category: r for r in rows})


@dataclass(frozen=True)
class VitalsRule:
    """Observation scheduling and glucose limits."""
    # Overdue when older than the slow end of the RCP minimum frequency (§1.2 [V]): 12 h, 4-6 h
    # -> 6 h, 1 h, and for "continuous" a monitor silent for 5 min [E].
    overdue_after_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({
        "12h": 12 * HOUR_S, "4-6h": 6 * HOUR_S, "1h": HOUR_S, "continuous": 300.0}))
    # Capillary glucose [E] engineering recommendation (not in standards.md): < 4.0 mmol/L is the
    # common inpatient hypoglycaemia threshold, < 3.0 clinically important ("level 2") hypo,
    # > 11.0 hyperglycaemia, > 20.0 severe hyperglycaemia needing prompt review.
    glucose_severe_hypo_mmol_l: float = 3.0
    glucose_hypo_mmol_l: float = 4.0
    glucose_hyper_mmol_l: float = 11.0
    glucose_severe_hyper_mmol_l: float = 20.0
    # [E] a continuous monitor reporting every 30 s that missed three readings is not reading.
    monitor_silent_after_s: float = 90.0


@dataclass(frozen=True)
class LocationRule:
    """Tag and geofence limits [E] (no standard number: site policy, tune per site)."""
    low_battery_pct: float = 15.0           # most RTLS badge vendors warn at 10-20 %
    silent_kinds: tuple[str, ...] = ("patient", "device", "staff")   # staff only while on duty


@dataclass(frozen=True)
class RuleSet:
    alarms: Mapping[str, AlarmRule] = field(default_factory=lambda: ALARM_RULES)
    escalation: Mapping[str, EscalationPolicy] = field(default_factory=lambda: ESCALATION)
    storage: Mapping[str, StorageRule] = field(default_factory=lambda: STORAGE_RULES)
    compatible: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: COMPATIBLE_LOCATIONS)
    waste: Mapping[str, WasteRule] = field(default_factory=waste_rules)
    vitals: VitalsRule = field(default_factory=VitalsRule)
    location: LocationRule = field(default_factory=LocationRule)

    def with_storage(self, rule: StorageRule) -> "RuleSet":
        return replace(self, storage=MappingProxyType({**self.storage, rule.storage_class: rule}))

    def with_alarm(self, rule: AlarmRule) -> "RuleSet":
        return replace(self, alarms=MappingProxyType({**self.alarms, rule.kind: rule}))


DEFAULT_RULES = RuleSet()


def rules_table(rules: RuleSet = DEFAULT_RULES) -> pd.DataFrame:
    """The alarm-kind registry as a table (README and operations page)."""
    rows = [{"kind": r.kind, "priority": r.priority, "hold_s": r.hold_s, "auto_clear": r.auto_clear,
             "ladder": " > ".join(r.roles), "description": r.description} for r in rules.alarms.values()]
    return pd.DataFrame(rows)
