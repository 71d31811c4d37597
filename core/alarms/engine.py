"""One alarm model and lifecycle for every alarm source (vitals, drug storage, waste, location, tags,
security, help requests). Pure and in-memory: the caller passes `now`, feeds currently-true
conditions, and writes the returned events to the audit log (see tables.py).

Lifecycle (IEC 60601-1-8 latching alarms, standards §4.1 [R]; IHE ACM states §4.2 [V]):

    condition appears        -> active (unacknowledged)
    active --ack-->             acknowledged --condition absent hold_s--> resolved
    active --condition absent hold_s--> cleared_unack (latched) --ack--> resolved
    cleared_unack --condition back--> active
    acknowledged --priority rises--> active (re-alarm, escalation restarts)
    active --no ack within the priority's timeout--> escalation_level+1, next role on the ladder
    any open state --resolve(user)--> resolved  (a condition still present re-raises a NEW alarm)
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.alarms.rules import DEFAULT_RULES, PRIORITIES, PRIORITY_RANK, RuleSet
from core.errors import InvalidInput, WardsightError
from core.models import utc

STATES = ("active", "acknowledged", "resolved", "cleared_unack")
OPEN_STATES = frozenset({"active", "acknowledged", "cleared_unack"})
SUBJECT_FIELDS = ("patient_id", "bin_id", "location_id", "subject_id")
PLACE_FIELDS = ("ward_id", "room_id", "bed_id", "floor_id", "x_m", "y_m")


class AlarmError(WardsightError):
    """An alarm operation cannot be done."""


class UnknownAlarm(AlarmError):
    """No alarm with this id."""


class InvalidTransition(AlarmError):
    """The alarm's state does not allow this operation (e.g. acknowledging a resolved alarm)."""


class InvalidCondition(InvalidInput):
    """A condition row cannot become an alarm (unknown kind, bad priority)."""


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    kind: str
    key: str
    priority: str                       # IEC 60601-1-8: high / medium / low
    message: str
    raised_at: datetime
    source: str = ""
    state: str = "active"
    ward_id: str | None = None
    room_id: str | None = None
    bed_id: str | None = None
    floor_id: str | None = None
    x_m: float | None = None
    y_m: float | None = None
    patient_id: str | None = None
    bin_id: str | None = None
    location_id: str | None = None
    subject_id: str | None = None       # tag / item / staff id for kinds without a dedicated field
    drug_ids: tuple[str, ...] = ()
    details: Mapping = field(default_factory=dict)
    last_seen_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    escalated_to_role: str | None = None
    level_since: datetime | None = None
    ladder: tuple[str, ...] = ()
    nearest_responder: str | None = None


@dataclass(frozen=True)
class AlarmEvent:
    """One audited transition; from_state None means the alarm was raised."""
    alarm_id: str
    ts: datetime
    from_state: str | None
    to_state: str
    actor: str
    detail: str


@dataclass(frozen=True)
class TickResult:
    events: tuple[AlarmEvent, ...]
    rejected: tuple[dict, ...]          # condition rows that could not become alarms, with "reason"


def _clean(value):
    """NaN/NA/NaT from a DataFrame row -> None, so optional fields stay optional."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:       # NaN without a pd.isna call per cell
        return None
    return value


def _rows(conditions) -> list[dict]:
    """Condition rows as dicts. A DataFrame goes column-wise through object arrays: to_dict on
    Arrow-backed string columns boxes every cell through pandas and costs more than the rules."""
    if not isinstance(conditions, pd.DataFrame):
        return [dict(c) for c in conditions]
    cols = list(conditions.columns)
    arrays = [conditions[c].to_numpy(dtype=object) for c in cols]
    return [dict(zip(cols, vals)) for vals in zip(*arrays)]


def _with(alarm: Alarm, changes: Mapping) -> Alarm:
    """A new Alarm with `changes` (no validation): the every-tick refresh of still-true
    conditions is the engine's hot path and dataclasses.replace re-runs __init__ per call."""
    new = copy.copy(alarm)
    for k, v in changes.items():
        object.__setattr__(new, k, v)
    return new


def condition_key(cond: Mapping) -> str:
    """De-duplication key: kind + the first subject id present (+ drug ids)."""
    subject = next((str(cond[f]) for f in SUBJECT_FIELDS if _clean(cond.get(f)) is not None), None)
    if subject is None and cond.get("drug_ids"):
        subject = ",".join(sorted(cond["drug_ids"]))
    return f"{cond['kind']}:{subject or cond.get('room_id') or '-'}"


def nearest_responder(alarm: Alarm, staff_presence: pd.DataFrame | None, role: str,
                      exclude: Iterable[str] = ()) -> str | None:
    """Nearest on-duty staff member with `role`: same floor first, then straight-line distance.

    staff_presence: staff_id, role, floor_id, x_m, y_m, on_duty. Without coordinates on the alarm
    the first on-duty match on the same floor (or anywhere) is returned; None if nobody qualifies.
    """
    if staff_presence is None or staff_presence.empty:
        return None
    s = staff_presence
    ok = (s["role"] == role) & s["on_duty"].fillna(False).astype(bool) & ~s["staff_id"].isin(list(exclude))
    cand = s[ok]
    if cand.empty:
        return None
    same_floor = (cand["floor_id"] == alarm.floor_id).to_numpy() if alarm.floor_id else np.zeros(len(cand), bool)
    if alarm.x_m is None or alarm.y_m is None:
        dist = np.zeros(len(cand))
    else:
        dist = np.hypot(cand["x_m"].to_numpy(float) - alarm.x_m, cand["y_m"].to_numpy(float) - alarm.y_m)
        dist = np.where(np.isnan(dist), np.inf, dist)
    # lexsort: last key is primary -> other floors after same floor, then distance, then id (stable).
    order = np.lexsort((cand["staff_id"].astype(str).to_numpy(), dist, ~same_floor))
    return str(cand["staff_id"].iloc[order[0]])


class AlarmEngine:
    """In-memory alarm state. Every public method returns the events it produced."""

    def __init__(self, rules: RuleSet = DEFAULT_RULES, id_factory=None):
        self.rules = rules
        self.alarms: dict[str, Alarm] = {}
        self._open_by_key: dict[str, str] = {}
        self._new_id = id_factory or (lambda: uuid.uuid4().hex[:16])
        self.events: list[AlarmEvent] = []

    # ------------------------------------------------------------ queries
    def get(self, alarm_id: str) -> Alarm:
        try:
            return self.alarms[alarm_id]
        except KeyError:
            raise UnknownAlarm(f"no alarm {alarm_id!r}") from None

    def open_alarms(self) -> list[Alarm]:
        return [a for a in self.alarms.values() if a.state in OPEN_STATES]

    def inbox(self) -> pd.DataFrame:
        """Open alarms, unacknowledged first, then priority, then oldest."""
        rows = [vars(a) | {"_rank": PRIORITY_RANK[a.priority]} for a in self.open_alarms()]
        if not rows:
            return pd.DataFrame(columns=list(Alarm.__dataclass_fields__))
        df = pd.DataFrame(rows)
        df["_unack"] = df["state"].isin(["active", "cleared_unack"])
        return (df.sort_values(["_unack", "_rank", "raised_at"], ascending=[False, False, True])
                  .drop(columns=["_unack", "_rank"]).reset_index(drop=True))

    def drain_events(self) -> list[AlarmEvent]:
        out, self.events = self.events, []
        return out

    def restore(self, alarms: Iterable[Alarm]) -> None:
        """Load open alarms persisted before a restart."""
        for a in alarms:
            self.alarms[a.alarm_id] = a
            if a.state in OPEN_STATES:
                self._open_by_key[a.key] = a.alarm_id

    # ------------------------------------------------------------ transitions
    def _set(self, alarm: Alarm, now: datetime, actor: str, detail: str, **changes) -> tuple[Alarm, AlarmEvent]:
        new = replace(alarm, **changes)
        self.alarms[new.alarm_id] = new
        if new.state not in OPEN_STATES:
            self._open_by_key.pop(new.key, None)
        ev = AlarmEvent(new.alarm_id, now, alarm.state, new.state, actor, detail)
        self.events.append(ev)
        return new, ev

    def _raise(self, cond: Mapping, now: datetime, staff: pd.DataFrame | None, ladder=None) -> AlarmEvent:
        rule = self.rules.alarms[cond["kind"]]
        ladder = tuple(ladder or rule.roles)
        place = {f: _clean(cond.get(f)) for f in PLACE_FIELDS + SUBJECT_FIELDS}
        alarm = Alarm(alarm_id=self._new_id(), kind=cond["kind"], key=cond["key"], priority=cond["priority"],
                      message=cond.get("message") or rule.description, raised_at=now,
                      source=cond.get("source") or cond["kind"].split(".")[0], last_seen_at=now,
                      drug_ids=tuple(cond.get("drug_ids") or ()), details=dict(cond.get("details") or {}),
                      escalated_to_role=ladder[0], level_since=now, ladder=ladder, **place)
        responder = _clean(cond.get("responder")) or nearest_responder(alarm, staff, ladder[0],
                                                                       exclude=cond.get("exclude") or ())
        alarm = replace(alarm, nearest_responder=responder)
        self.alarms[alarm.alarm_id] = alarm
        self._open_by_key[alarm.key] = alarm.alarm_id
        ev = AlarmEvent(alarm.alarm_id, now, None, "active", "system",
                        f"raised {alarm.priority}: {alarm.message}; to {ladder[0]} {responder or '(nobody on duty)'}")
        self.events.append(ev)
        return ev

    def _refresh(self, alarm: Alarm, cond: Mapping, now: datetime) -> list[AlarmEvent]:
        """A still-true condition: keep one alarm, follow its priority and data."""
        changes = dict(last_seen_at=now, message=cond.get("message") or alarm.message,
                       details=dict(cond.get("details") or alarm.details),
                       drug_ids=tuple(cond.get("drug_ids") or alarm.drug_ids))
        worse = PRIORITY_RANK[cond["priority"]] > PRIORITY_RANK[alarm.priority]
        if worse:
            changes.update(priority=cond["priority"])
        if alarm.state == "cleared_unack":
            return [self._set(alarm, now, "system", "condition returned", state="active", **changes)[1]]
        if worse and alarm.state == "acknowledged":
            # IEC 60601-1-8: an acknowledged alarm re-alarms when the condition worsens (§4.1 [R]).
            return [self._set(alarm, now, "system", f"worsened to {cond['priority']}: re-alarm", state="active",
                              escalation_level=0, escalated_to_role=alarm.ladder[0], level_since=now, **changes)[1]]
        if worse:
            return [self._set(alarm, now, "system", f"priority {alarm.priority} -> {cond['priority']}", **changes)[1]]
        self.alarms[alarm.alarm_id] = _with(alarm, changes)      # no state change: nothing to audit
        return []

    def _validate(self, conditions) -> tuple[list[dict], list[dict]]:
        rows = _rows(conditions)
        good: dict[str, dict] = {}
        rejected = []
        for c in rows:
            c = {k: _clean(v) for k, v in c.items()}     # NaN from concatenated frames = absent
            kind = c.get("kind")
            if kind not in self.rules.alarms:
                rejected.append({**c, "reason": f"unknown alarm kind {kind!r}"})
                continue
            c["priority"] = _clean(c.get("priority")) or self.rules.alarms[kind].priority
            if c["priority"] not in PRIORITIES:
                rejected.append({**c, "reason": f"priority {c['priority']!r} is not one of {PRIORITIES}"})
                continue
            c["key"] = _clean(c.get("key")) or condition_key(c)
            prev = good.get(c["key"])
            if prev is None or PRIORITY_RANK[c["priority"]] > PRIORITY_RANK[prev["priority"]]:
                good[c["key"]] = c          # one alarm per key: the worst duplicate wins
        return list(good.values()), rejected

    def evaluate(self, conditions, now: datetime, staff_presence: pd.DataFrame | None = None,
                 scope: Iterable[str] | None = None) -> TickResult:
        """Reconcile alarms with the conditions true at `now`.

        conditions: DataFrame or iterable of mappings with kind, optional key, subject/place fields,
        priority, message, details. It must be the complete set for the kinds in `scope` (kind
        prefixes such as "storage."; None = all kinds): open alarms of those kinds whose condition
        has been absent for the rule's hold time clear.
        """
        now = utc(now)
        conds, rejected = self._validate(conditions)
        events: list[AlarmEvent] = []
        for c in conds:
            open_id = self._open_by_key.get(c["key"])
            if open_id is None:
                events.append(self._raise(c, now, staff_presence))
            else:
                events.extend(self._refresh(self.alarms[open_id], c, now))
        present = {c["key"] for c in conds}
        prefixes = tuple(scope) if scope is not None else ("",)
        for alarm in list(self.open_alarms()):
            rule = self.rules.alarms[alarm.kind]
            if alarm.key in present or not rule.auto_clear or not alarm.kind.startswith(prefixes):
                continue
            if (now - alarm.last_seen_at).total_seconds() < rule.hold_s:
                continue
            if alarm.state == "acknowledged" or (alarm.state == "active" and not rule.latching):
                events.append(self._set(alarm, now, "system", "condition cleared", state="resolved", resolved_at=now)[1])
            elif alarm.state == "active":
                events.append(self._set(alarm, now, "system", "condition cleared before acknowledgement (latched)",
                                        state="cleared_unack")[1])
        return TickResult(tuple(events), tuple(rejected))

    def acknowledge(self, alarm_id: str, user: str, now: datetime, note: str = "") -> AlarmEvent:
        alarm, now = self.get(alarm_id), utc(now)
        if alarm.state == "active":
            return self._set(alarm, now, user, note or "acknowledged", state="acknowledged",
                             acknowledged_by=user, acknowledged_at=now)[1]
        if alarm.state == "cleared_unack":
            return self._set(alarm, now, user, note or "acknowledged after the condition cleared", state="resolved",
                             acknowledged_by=user, acknowledged_at=now, resolved_by=user, resolved_at=now)[1]
        raise InvalidTransition(f"cannot acknowledge alarm {alarm_id} in state {alarm.state!r}")

    def resolve(self, alarm_id: str, user: str, now: datetime, note: str = "") -> AlarmEvent:
        alarm, now = self.get(alarm_id), utc(now)
        if alarm.state not in OPEN_STATES:
            raise InvalidTransition(f"cannot resolve alarm {alarm_id} in state {alarm.state!r}")
        return self._set(alarm, now, user, note or "resolved by user", state="resolved", resolved_by=user,
                         resolved_at=now, acknowledged_by=alarm.acknowledged_by or user,
                         acknowledged_at=alarm.acknowledged_at or now)[1]

    def tick(self, now: datetime, staff_presence: pd.DataFrame | None = None) -> list[AlarmEvent]:
        """Escalate unacknowledged (active) alarms whose timeout at their level has passed."""
        now = utc(now)
        events = []
        for alarm in [a for a in self.alarms.values() if a.state == "active"]:
            policy = self.rules.escalation[alarm.priority]
            level, since = alarm.escalation_level, alarm.level_since
            timeout = policy.timeout_at(level)
            # Catch up on every step due since the last tick; steps are counted from the previous
            # step's due time so a late tick does not stretch the ladder.
            while timeout is not None and level + 1 < len(alarm.ladder) and (now - since).total_seconds() >= timeout:
                since = since + pd.Timedelta(seconds=timeout).to_pytimedelta()
                level += 1
                timeout = policy.timeout_at(level)
            if level == alarm.escalation_level:
                continue
            role = alarm.ladder[level]
            responder = nearest_responder(alarm, staff_presence, role, exclude=alarm.details.get("declined_by", ()))
            events.append(self._set(alarm, now, "system", f"no acknowledgement: escalated to {role} (level {level})",
                                    escalation_level=level, escalated_to_role=role, level_since=since,
                                    nearest_responder=responder or alarm.nearest_responder)[1])
        return events

    # ------------------------------------------------------------ help requests
    def request_help(self, role: str, room: Mapping, requester: str, now: datetime,
                     staff_presence: pd.DataFrame | None = None) -> tuple[Alarm, list[AlarmEvent]]:
        """Ask the nearest available `role` to come to `room` (room_id, floor_id, x_m, y_m, ward_id).

        A repeated request from the same person for the same role and room is the same alarm.
        Unaccepted requests escalate: role -> charge nurse -> ward manager."""
        now = utc(now)
        key = f"help.request:{room.get('room_id')}:{role}:{requester}"
        if key in self._open_by_key:
            return self.alarms[self._open_by_key[key]], []
        ladder = tuple(dict.fromkeys((role, "charge_nurse", "ward_manager")))
        cond = {"kind": "help.request", "key": key, "priority": self.rules.alarms["help.request"].priority,
                "message": f"{requester} requests a {role.replace('_', ' ')} in {room.get('room_id')}",
                "subject_id": requester, "exclude": (requester,), "details": {"requested_role": role},
                **{f: room.get(f) for f in PLACE_FIELDS}}
        ev = self._raise(cond, now, staff_presence, ladder=ladder)
        return self.alarms[ev.alarm_id], [ev]

    def accept_help(self, alarm_id: str, user: str, now: datetime) -> AlarmEvent:
        return self.acknowledge(alarm_id, user, now, note=f"accepted by {user}")

    def decline_help(self, alarm_id: str, user: str, now: datetime,
                     staff_presence: pd.DataFrame | None = None) -> AlarmEvent:
        """The notified person cannot come: pass it to the next nearest with the same role."""
        alarm, now = self.get(alarm_id), utc(now)
        if alarm.state != "active":
            raise InvalidTransition(f"cannot decline alarm {alarm_id} in state {alarm.state!r}")
        declined = tuple(alarm.details.get("declined_by", ())) + (user,)
        exclude = declined + ((alarm.subject_id,) if alarm.subject_id else ())
        nxt = nearest_responder(alarm, staff_presence, alarm.escalated_to_role, exclude=exclude)
        return self._set(alarm, now, user, f"declined by {user}; passed to {nxt or '(nobody on duty)'}",
                         details={**alarm.details, "declined_by": declined}, nearest_responder=nxt)[1]
