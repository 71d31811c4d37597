"""Import every module that defines tables on `core.storage.schema.metadata`, so `create_all` and
Alembic see the whole schema. Add a feature's table module here when it is merged."""
from core.alarms import tables as _alarm_tables  # noqa: F401
from core.security import tables as _security_tables  # noqa: F401
from core import health as _health_tables  # noqa: F401
from core.storage import schema  # noqa: F401
from core import bedside_service as _bedside_tables  # noqa: F401  (bedside_sessions)
from core import care_team as _care_tables  # noqa: F401  (care_assignments)
