"""One exception tree for Wardsight. Lower layers' errors (SQLAlchemy, paho, json) are translated
into these at the boundary so callers catch one family.

Modules that need a more precise error subclass one of these in their own module.
"""


class WardsightError(Exception):
    """Base of every error Wardsight raises on purpose."""


class ConfigError(WardsightError):
    """A setting is missing or malformed."""


class InvalidInput(WardsightError, ValueError):
    """Input data is malformed or physically impossible (also a ValueError)."""


class InvalidReading(InvalidInput):
    """A feed read failed validation; the reason goes to quarantine."""


class SignatureError(InvalidReading):
    """A feed message is unsigned, tampered with or replayed."""


class UnknownTag(InvalidReading):
    """A read names a tag that is not registered to any entity."""


class UnknownReader(InvalidReading):
    """A read names a reader/antenna that is not on any floor plan."""


class ImpossibleVitalSign(InvalidInput):
    """A vital sign outside physiological possibility; never scored."""


class FloorPlanError(WardsightError):
    """A floor plan cannot be loaded or is inconsistent."""


class FhirError(InvalidInput):
    """A FHIR resource or bundle cannot be read."""


class StorageError(WardsightError):
    """The database refused or is unreachable (wraps SQLAlchemy errors)."""


class AccessDenied(WardsightError):
    """The signed-in user's role may not see or do this."""


class AuthError(WardsightError):
    """Sign-in failed (bad password, bad second factor, locked out, expired session)."""


class FeedError(WardsightError):
    """A feed transport (MQTT, file) failed."""
