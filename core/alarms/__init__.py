"""Unified alarm inbox, pure domain core: NEWS2 and vitals rules, drug storage, waste, one alarm
lifecycle (AlarmEngine) and the rule registry. No Streamlit, no clock: `now` is always passed in."""
from core.alarms.drug_storage import (StorageEvaluation, excursion_episodes, mean_kinetic_temperature,
                                      storage_conditions)
from core.alarms.engine import (Alarm, AlarmEngine, AlarmError, AlarmEvent, InvalidTransition, TickResult,
                                UnknownAlarm, nearest_responder)
from core.alarms.rules import DEFAULT_RULES, RuleSet, rules_table
from core.alarms.vitals import (ImpossibleVital, MissingVital, News2, News2Partial, glucose_level, news2,
                                news2_frame, news2_partial, validate_glucose, vitals_conditions)
from core.alarms.waste import WasteEvaluation, last_handler, waste_conditions

__all__ = ["Alarm", "AlarmEngine", "AlarmError", "AlarmEvent", "DEFAULT_RULES", "ImpossibleVital",
           "InvalidTransition", "MissingVital", "News2", "News2Partial", "RuleSet", "StorageEvaluation",
           "TickResult", "UnknownAlarm", "WasteEvaluation", "excursion_episodes", "glucose_level",
           "last_handler", "mean_kinetic_temperature", "nearest_responder", "news2", "news2_frame",
           "news2_partial", "rules_table", "storage_conditions", "validate_glucose", "vitals_conditions",
           "waste_conditions"]
