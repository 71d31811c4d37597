"""Pure aggregates for the managers' operations page.

Every function takes DataFrames plus a query window and returns a tidy DataFrame. Windows are
half-open [start, end) (calendar days and shifts tile without double counting); start/end must be
tz-aware. Event frames are selected by their own time (alarms by raised_at, disposals by ts, ...);
interval frames (device status, bed stays, bedside sessions) are clipped to the window.

Shifts: day 07:00–19:00, night 19:00–07:00 local time (`tz`, default Europe/London). The night that
starts at 19:00 on D has shift_date D, so its 02:00 events belong to D too.

`daily_rollup` pre-aggregates the big feeds (alarms, bedside sessions, device intervals, hand
hygiene opportunities) to one row per local day × ward × shift × key; `operations_page` renders the
page's aggregates from it so 90 days of a 1,000-bed hospital costs milliseconds, not a raw scan.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from core.errors import InvalidInput
from core.models import time_window, utc_timestamp

DEFAULT_TZ = "Europe/London"
# Shift pattern of the brief (site convention, not from a standard): day 07–19, night 19–07.
DAY_SHIFT_START_H = 7
NIGHT_SHIFT_START_H = 19

ALARM_COLUMNS = ["alarm_id", "kind", "ward_id", "priority", "raised_at", "acknowledged_at",
                 "resolved_at", "escalation_level"]
EXCURSION_COLUMNS = ["location_id", "start", "end", "duration_s", "drugs_affected", "mkt_c"]
DISPOSAL_COLUMNS = ["ward_id", "ts", "waste_category", "bin_category"]
BIN_COLUMNS = ["bin_id", "ward_id", "category", "opened_at", "collected_at"]
DEVICE_INTERVAL_COLUMNS = ["device_id", "ward_id", "device_type", "status", "start", "end"]
PAR_COLUMNS = ["ward_id", "device_type", "par"]
BED_COLUMNS = ["ward_id", "beds"]
STAY_COLUMNS = ["bed_id", "ward_id", "start", "end"]
ROOM_EVENT_COLUMNS = ["staff_id", "ward_id", "room_id", "ts", "event"]
DISPENSER_COLUMNS = ["staff_id", "ts"]
SESSION_COLUMNS = ["staff_id", "ward_id", "start", "end"]

DEVICE_STATUSES = ("in_use", "idle", "cleaning")
# The entities table calls an idle device "available"; both spellings mean idle here.
_STATUS_ALIASES = {"available": "idle"}

# WHO 2014 storage limit without refrigeration, temperate warm season / warm climate cool season:
# 48 h (standards.md §3.1, table "Max time from generation to treatment"). Site-configurable.
DEFAULT_BIN_MAX_AGE_H = 48.0
# Hand hygiene: a dispenser use this close to a room entry/exit counts for that opportunity.
# Not a standard number (WHO "5 moments" gives no seconds); a site setting, 30 s by default.
DEFAULT_HYGIENE_WITHIN_S = 30.0
# Response-time histogram edges for the rollup [s]; quantiles from the rollup are reported as the
# upper edge of the bucket that holds them ("≤ 120 s").
RESPONSE_BUCKETS_S = np.array([15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, np.inf])


class MissingColumns(InvalidInput):
    """An input frame lacks columns the aggregate needs."""


class InconsistentTimes(InvalidInput):
    """A row's times contradict each other (e.g. acknowledged before raised)."""


class UnknownStatus(InvalidInput):
    """A device status outside in_use / idle / cleaning."""


# ---------------------------------------------------------------------------------- helpers

def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumns(f"{what} is missing columns {missing}; expected {list(columns)}")


def _utc(ts, name: str) -> pd.Timestamp:
    return utc_timestamp(ts, name, InvalidInput)


def _window(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    return time_window(start, end, InvalidInput, InvalidInput)


def _aware(s: pd.Series, name: str) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if s.isna().all():
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    raise InvalidInput(f"{name} must be tz-aware datetimes, got {s.dtype}")


def _seconds(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds()


def assign_shift(ts: pd.Series, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """shift ("day"/"night"), shift_date (local date the shift began) and day (local calendar date)
    for tz-aware times; computed on the wall clock so DST days keep 07:00/19:00 boundaries."""
    wall = _aware(ts, "ts").dt.tz_convert(tz).dt.tz_localize(None)
    hour = wall.dt.hour
    is_day = (hour >= DAY_SHIFT_START_H) & (hour < NIGHT_SHIFT_START_H)
    return pd.DataFrame({
        "shift": np.where(is_day, "day", "night"),
        "shift_date": (wall - pd.Timedelta(hours=DAY_SHIFT_START_H)).dt.normalize(),
        "day": wall.dt.normalize(),
    }, index=ts.index).astype({"shift": "str"})


def _groups(df: pd.DataFrame, by: Sequence[str]):
    return df.groupby(list(by), sort=True, observed=True, dropna=False)


# ------------------------------------------------------------------------------------ alarms

def alarm_durations(alarms: pd.DataFrame, start, end, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """One row per alarm raised in [start, end): kind, ward_id, priority, shift, shift_date, day,
    time_to_ack_s / time_to_resolve_s (NaN while pending), escalated (escalation_level > 0).
    An acknowledgement or resolution before the alarm was raised raises InconsistentTimes."""
    _require(alarms, ALARM_COLUMNS, "alarms")
    s, e = _window(start, end)
    raised = _aware(alarms["raised_at"], "raised_at")
    a = alarms[(raised >= s) & (raised < e)]
    raised = raised[a.index]
    ack_s = _seconds(_aware(a["acknowledged_at"], "acknowledged_at") - raised)
    resolve_s = _seconds(_aware(a["resolved_at"], "resolved_at") - raised)
    bad = (ack_s < 0) | (resolve_s < 0)
    if bad.any():
        ids = a.loc[bad, "alarm_id"].astype("str").head(5).tolist()
        raise InconsistentTimes(f"{int(bad.sum())} alarm(s) acknowledged/resolved before raised: {ids}")
    out = pd.DataFrame({"alarm_id": a["alarm_id"], "kind": a["kind"], "ward_id": a["ward_id"],
                        "priority": a["priority"], "time_to_ack_s": ack_s, "time_to_resolve_s": resolve_s,
                        "escalated": a["escalation_level"].fillna(0) > 0})
    return pd.concat([out, assign_shift(raised, tz)], axis=1).reset_index(drop=True)


def alarm_response(alarms: pd.DataFrame, start, end, by: Sequence[str] = ("kind", "ward_id", "shift"),
                   tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Time-to-acknowledge and time-to-resolve distributions: one row per group × metric with
    alarms, measured (acknowledged/resolved), pending, median_s, p90_s, mean_s, max_s."""
    d = alarm_durations(alarms, start, end, tz)
    long = d.melt(id_vars=list(by), value_vars=["time_to_ack_s", "time_to_resolve_s"],
                  var_name="metric", value_name="value_s")
    g = _groups(long, [*by, "metric"])["value_s"]
    out = pd.DataFrame({"alarms": g.size(), "measured": g.count(), "median_s": g.median(),
                        "p90_s": g.quantile(0.9), "mean_s": g.mean(), "max_s": g.max()})
    out["pending"] = out["alarms"] - out["measured"]
    return out.reset_index()[[*by, "metric", "alarms", "measured", "pending", "median_s", "p90_s",
                              "mean_s", "max_s"]]


def escalation_rate(alarms: pd.DataFrame, start, end, by: Sequence[str] = ("kind", "ward_id"),
                    tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Share of alarms raised in [start, end) that escalated at least one level, per group."""
    d = alarm_durations(alarms, start, end, tz)
    g = _groups(d, by)["escalated"]
    out = pd.DataFrame({"alarms": g.size(), "escalated": g.sum().astype("int64")}).reset_index()
    out["escalation_rate"] = out["escalated"] / out["alarms"]
    return out


def alarm_load(alarms: pd.DataFrame, beds: pd.DataFrame, start, end) -> pd.DataFrame:
    """Alarms per bed per day per ward over [start, end) (days may be fractional). Every ward in
    `beds` (ward_id, beds) appears, with 0 alarms if quiet; alarms of a ward without a bed count
    raise InvalidInput (a rate without a denominator would be made up)."""
    _require(beds, BED_COLUMNS, "beds")
    d = alarm_durations(alarms, start, end)
    counts = d.groupby("ward_id").size().rename("alarms")
    return _per_bed_day(counts, beds, start, end)


def _per_bed_day(counts: pd.Series, beds: pd.DataFrame, start, end) -> pd.DataFrame:
    unknown = sorted(set(counts.index) - set(beds["ward_id"]))
    if unknown:
        raise InvalidInput(f"alarms from wards with no bed count: {unknown[:10]}")
    s, e = _window(start, end)
    days = (e - s).total_seconds() / 86_400
    out = beds[BED_COLUMNS].merge(counts.reset_index(), on="ward_id", how="left")
    out["alarms"] = out["alarms"].fillna(0).astype("int64")
    out["days"] = days
    out["alarms_per_bed_day"] = out["alarms"] / (out["beds"] * days)
    return out.sort_values("ward_id").reset_index(drop=True)


# ----------------------------------------------------------------------- storage and waste

def excursion_summary(excursions: pd.DataFrame, start, end) -> pd.DataFrame:
    """Per storage location, excursions that began in [start, end): count, total and longest
    duration_s, drugs_affected (sum of the per-episode counts) and the worst (max) mkt_c."""
    _require(excursions, EXCURSION_COLUMNS, "excursions")
    s, e = _window(start, end)
    began = _aware(excursions["start"], "start")
    x = excursions[(began >= s) & (began < e)]
    if (x["duration_s"] < 0).any():
        raise InconsistentTimes("an excursion has a negative duration_s")
    g = x.groupby("location_id")
    return pd.DataFrame({"excursions": g.size(), "duration_s": g["duration_s"].sum(),
                         "max_duration_s": g["duration_s"].max(),
                         "drugs_affected": g["drugs_affected"].sum(),
                         "max_mkt_c": g["mkt_c"].max()}).reset_index()


def waste_compliance(disposals: pd.DataFrame, bins: pd.DataFrame, start, end,
                     max_age_h: float | dict[str, float] = DEFAULT_BIN_MAX_AGE_H) -> pd.DataFrame:
    """Per ward: disposals in [start, end), wrong_bin (waste category ≠ bin category), wrong_bin_rate,
    bins open during the window, and overdue_bins: bins older than max_age_h (per category if a
    dict) at some moment of the window without having been collected."""
    _require(disposals, DISPOSAL_COLUMNS, "disposals")
    _require(bins, BIN_COLUMNS, "bins")
    s, e = _window(start, end)
    ts = _aware(disposals["ts"], "ts")
    d = disposals[(ts >= s) & (ts < e)]
    wrong = (d["waste_category"].astype("str") != d["bin_category"].astype("str"))
    per_ward = pd.DataFrame({"disposals": d.groupby("ward_id").size(),
                             "wrong_bin": wrong.groupby(d["ward_id"]).sum()})
    bin_stats = _bin_overdue(bins, s, e, max_age_h)
    out = per_ward.join(bin_stats, how="outer").fillna(0).astype("int64").reset_index()
    out["wrong_bin_rate"] = np.where(out["disposals"] > 0, out["wrong_bin"] / out["disposals"].where(out["disposals"] > 0, 1), np.nan)
    return out[["ward_id", "disposals", "wrong_bin", "wrong_bin_rate", "bins_open", "overdue_bins"]]


def _bin_overdue(bins: pd.DataFrame, s, e, max_age_h) -> pd.DataFrame:
    opened = _aware(bins["opened_at"], "opened_at")
    collected = _aware(bins["collected_at"], "collected_at")
    if (collected < opened).any():
        raise InconsistentTimes("a bin was collected before it was opened")
    if isinstance(max_age_h, dict):
        hours = bins["category"].map(max_age_h)
        if hours.isna().any():
            missing = sorted(set(bins.loc[hours.isna(), "category"].astype("str")))
            raise InvalidInput(f"no max_age_h for bin categories {missing}")
    else:
        hours = pd.Series(float(max_age_h), index=bins.index)
    overdue_at = opened + pd.to_timedelta(hours, unit="h")
    still_there = collected.isna() | (collected > s)
    open_in_window = (opened < e) & still_there
    overdue = open_in_window & (overdue_at < e) & (collected.isna() | (collected > np.maximum(overdue_at, s)))
    return pd.DataFrame({"bins_open": open_in_window.groupby(bins["ward_id"]).sum(),
                         "overdue_bins": overdue.groupby(bins["ward_id"]).sum()})


# ----------------------------------------------------------------------------------- devices

def _checked_intervals(frame: pd.DataFrame, columns: Sequence[str], what: str, end_fill) -> pd.DataFrame:
    _require(frame, columns, what)
    end = _aware(frame["end"], f"{what}.end")
    # fill in the column's own unit (pandas 3 refuses a fill value of another resolution)
    f = frame.assign(start=_aware(frame["start"], f"{what}.start"),
                     end=end.fillna(pd.Timestamp(end_fill).as_unit(end.dtype.unit)))
    if f["start"].isna().any():
        raise InvalidInput(f"{what} has {int(f['start'].isna().sum())} interval(s) without a start")
    if (f["end"] < f["start"]).any():
        raise InconsistentTimes(f"{what} has {int((f['end'] < f['start']).sum())} interval(s) ending before they start")
    return f


def _clip(f: pd.DataFrame, s, e) -> pd.DataFrame:
    c = f[(f["start"] < e) & (f["end"] > s)]
    return c.assign(start=c["start"].clip(lower=s), end=c["end"].clip(upper=e))


def _device_statuses(intervals: pd.DataFrame, end_fill) -> pd.DataFrame:
    f = _checked_intervals(intervals, DEVICE_INTERVAL_COLUMNS, "device intervals", end_fill)
    status = f["status"].astype("str").replace(_STATUS_ALIASES)
    unknown = sorted(set(status.unique()) - set(DEVICE_STATUSES))
    if unknown:
        raise UnknownStatus(f"device statuses {unknown} are not one of {DEVICE_STATUSES}")
    return f.assign(status=status)


def device_utilisation(intervals: pd.DataFrame, start, end,
                       by: Sequence[str] = ("ward_id", "device_type")) -> pd.DataFrame:
    """Time in each status per group over [start, end): by..., status, duration_s, share (of the
    group's tracked time). Open intervals (NaT end) run to `end`. Every status appears per group."""
    s, e = _window(start, end)
    f = _clip(_device_statuses(intervals, e), s, e)
    f = f.assign(duration_s=_seconds(f["end"] - f["start"]))
    return _status_shares(f.groupby([*by, "status"])["duration_s"].sum(), by)


def _status_shares(durations: pd.Series, by: Sequence[str]) -> pd.DataFrame:
    wide = durations.unstack("status").reindex(columns=list(DEVICE_STATUSES)).fillna(0.0)
    shares = wide.div(wide.sum(axis=1).where(lambda x: x > 0), axis=0)
    out = wide.stack().rename("duration_s").to_frame().join(shares.stack().rename("share"))
    return out.reset_index()[[*by, "status", "duration_s", "share"]]


def par_levels(intervals: pd.DataFrame, par: pd.DataFrame, at) -> pd.DataFrame:
    """Device counts by status at instant `at` per ward and device type against par levels.
    shortage = max(par − idle, 0); warning when shortage > 0. Devices whose status at `at` is not
    covered by an interval are not counted as available (we do not claim what we do not know)."""
    _require(par, PAR_COLUMNS, "par")
    at_utc = _utc(at, "at")
    f = _device_statuses(intervals, pd.Timestamp.max.tz_localize("UTC"))
    now = f[(f["start"] <= at_utc) & (f["end"] > at_utc)]
    counts = now.groupby(["ward_id", "device_type", "status"]).size().unstack("status")
    counts = counts.reindex(columns=list(DEVICE_STATUSES)).fillna(0).astype("int64")
    out = par[PAR_COLUMNS].merge(counts.reset_index(), on=["ward_id", "device_type"], how="outer")
    out[list(DEVICE_STATUSES)] = out[list(DEVICE_STATUSES)].fillna(0).astype("int64")
    out["par"] = out["par"].fillna(0).astype("int64")
    out["shortage"] = (out["par"] - out["idle"]).clip(lower=0)
    out["warning"] = out["shortage"] > 0
    cols = ["ward_id", "device_type", "par", "idle", "in_use", "cleaning", "shortage", "warning"]
    return out[cols].sort_values(["ward_id", "device_type"]).reset_index(drop=True)


# -------------------------------------------------------------------------------------- beds

def bed_occupancy(stays: pd.DataFrame, beds: pd.DataFrame, start, end) -> pd.DataFrame:
    """Per ward: occupied bed-seconds in [start, end) (overlapping stays of one bed count once),
    capacity_bed_s = beds × window seconds, occupancy = occupied / capacity."""
    _require(beds, BED_COLUMNS, "beds")
    s, e = _window(start, end)
    f = _clip(_checked_intervals(stays, STAY_COLUMNS, "stays", e), s, e)
    merged = _union_per_key(f, "bed_id")
    occupied = merged.groupby("ward_id")["duration_s"].sum().rename("occupied_bed_s")
    out = beds[BED_COLUMNS].merge(occupied.reset_index(), on="ward_id", how="left")
    out["occupied_bed_s"] = out["occupied_bed_s"].fillna(0.0)
    out["capacity_bed_s"] = out["beds"] * (e - s).total_seconds()
    out["occupancy"] = out["occupied_bed_s"] / out["capacity_bed_s"]
    return out.sort_values("ward_id").reset_index(drop=True)


def _union_per_key(f: pd.DataFrame, key: str) -> pd.DataFrame:
    """Merge overlapping intervals per key (sort, running max of end, new block when a start
    passes it) → key, ward_id, duration_s of each merged block."""
    f = f.sort_values([key, "start"])
    f = f.assign(_run_end=f.groupby(key)["end"].cummax())
    prev_end = f.groupby(key)["_run_end"].shift()
    block = (prev_end.isna() | (f["start"] > prev_end)).cumsum()
    g = f.groupby(block)
    return pd.DataFrame({key: g[key].first(), "ward_id": g["ward_id"].first(),
                         "duration_s": _seconds(g["end"].max() - g["start"].min())})


# ----------------------------------------------------------------------- staff at the bedside

def hand_hygiene_opportunities(room_events: pd.DataFrame, dispenser_events: pd.DataFrame, start, end,
                               within_s: float = DEFAULT_HYGIENE_WITHIN_S,
                               tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Each staff entry to / exit from a patient room in [start, end) is one opportunity; it is
    compliant when the same staff member used a dispenser within `within_s` seconds of it (before
    or after). Returns ward_id, room_id, staff_id, event, ts, compliant, shift, shift_date, day.
    Vectorised with merge_asof(direction="nearest") per staff member."""
    _require(room_events, ROOM_EVENT_COLUMNS, "room_events")
    _require(dispenser_events, DISPENSER_COLUMNS, "dispenser_events")
    s, e = _window(start, end)
    ts = _aware(room_events["ts"], "room_events.ts")
    ev = room_events.assign(ts=ts)[(ts >= s) & (ts < e)]
    bad = sorted(set(ev["event"].astype("str").unique()) - {"enter", "exit"})
    if bad:
        raise InvalidInput(f"room event kinds {bad} are not enter/exit")
    ev = ev.assign(staff_id=ev["staff_id"].astype("str"), ts=ev["ts"].astype("datetime64[us, UTC]"))
    disp = dispenser_events.assign(staff_id=dispenser_events["staff_id"].astype("str"),
                                   disp_ts=_aware(dispenser_events["ts"], "dispenser_events.ts")
                                   .astype("datetime64[us, UTC]"))[["staff_id", "disp_ts"]]
    disp = disp.dropna(subset=["disp_ts"]).sort_values("disp_ts")
    matched = pd.merge_asof(ev.sort_values("ts"), disp, left_on="ts", right_on="disp_ts", by="staff_id",
                            direction="nearest", tolerance=pd.Timedelta(seconds=within_s))
    matched["compliant"] = matched["disp_ts"].notna()
    out = matched[["ward_id", "room_id", "staff_id", "event", "ts", "compliant"]].reset_index(drop=True)
    return pd.concat([out, assign_shift(out["ts"], tz)], axis=1)


def hand_hygiene_compliance(room_events: pd.DataFrame, dispenser_events: pd.DataFrame, start, end,
                            within_s: float = DEFAULT_HYGIENE_WITHIN_S, by: Sequence[str] = ("ward_id", "shift"),
                            tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Opportunities, compliant and compliance (share) per group (default ward × shift)."""
    o = hand_hygiene_opportunities(room_events, dispenser_events, start, end, within_s, tz)
    g = _groups(o, by)["compliant"]
    out = pd.DataFrame({"opportunities": g.size(), "compliant": g.sum().astype("int64")}).reset_index()
    out["compliance"] = out["compliant"] / out["opportunities"]
    return out


def bedside_time(sessions: pd.DataFrame, start, end, by: Sequence[str] = ("ward_id", "shift"),
                 tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Time at the bedside aggregated (never per person): sessions, staff (distinct), bedside_s,
    mean_session_s and bedside_s_per_staff per group. Sessions are clipped to [start, end) and
    belong to the shift in which they (or their clipped part) start."""
    s, e = _window(start, end)
    f = _clip(_checked_intervals(sessions, SESSION_COLUMNS, "bedside sessions", e), s, e)
    f = pd.concat([f.assign(bedside_s=_seconds(f["end"] - f["start"])),
                   assign_shift(f["start"], tz)], axis=1)
    g = _groups(f, by)
    out = pd.DataFrame({"sessions": g.size(), "staff": g["staff_id"].nunique(),
                        "bedside_s": g["bedside_s"].sum()}).reset_index()
    out["mean_session_s"] = out["bedside_s"] / out["sessions"]
    out["bedside_s_per_staff"] = out["bedside_s"] / out["staff"]
    return out


# ------------------------------------------------------------------------------ pre-aggregation

class Rollup(NamedTuple):
    """Per local day pre-aggregates (additive: sums over days give any whole-day window)."""
    alarms: pd.DataFrame          # day, ward_id, shift, kind, alarms, escalated, acked, ack_s_sum, resolved, resolve_s_sum
    response_hist: pd.DataFrame   # day, ward_id, shift, kind, metric, bucket_s, count
    bedside: pd.DataFrame         # day, ward_id, shift, sessions, staff, bedside_s (staff: distinct per day)
    devices: pd.DataFrame         # day, ward_id, device_type, status, duration_s
    hand_hygiene: pd.DataFrame    # day, ward_id, shift, opportunities, compliant


def _split_days(f: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Cut intervals at local midnights (DST-safe) and add the local `day` of each piece."""
    if f.empty:
        return f.assign(day=pd.Series(dtype="datetime64[us]", index=f.index))
    wall_s = f["start"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    wall_e = f["end"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    n = ((wall_e - wall_s).dt.days + 1).to_numpy()
    rows = np.repeat(np.arange(len(f)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    pieces = f.iloc[rows].reset_index(drop=True)
    day = (wall_s.to_numpy()[rows] + k * np.timedelta64(1, "D")).astype("datetime64[us]")
    # Local midnights → UTC once per distinct day (a few hundred), not once per piece.
    uniq, inverse = np.unique(day, return_inverse=True)
    uniq = pd.DatetimeIndex(uniq)
    lo = uniq.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")[inverse]
    hi = (uniq + pd.Timedelta(days=1)).tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")[inverse]
    pieces["start"] = pieces["start"].where(pieces["start"] > lo, pd.Series(lo))
    pieces["end"] = pieces["end"].where(pieces["end"] < hi, pd.Series(hi))
    pieces["day"] = pd.Series(day, dtype="datetime64[us]")
    return pieces[pieces["end"] > pieces["start"]]


def _bucket_upper(values: pd.Series) -> np.ndarray:
    return RESPONSE_BUCKETS_S[np.searchsorted(RESPONSE_BUCKETS_S, values.to_numpy(), side="left")]


def daily_rollup(alarms: pd.DataFrame, sessions: pd.DataFrame, device_intervals: pd.DataFrame,
                 room_events: pd.DataFrame, dispenser_events: pd.DataFrame, start, end,
                 tz: str = DEFAULT_TZ, within_s: float = DEFAULT_HYGIENE_WITHIN_S) -> Rollup:
    """Pre-aggregate [start, end) to per local day × ward × shift × kind counts and duration sums
    (intervals are cut at local midnights). Run it nightly for yesterday; the page sums days."""
    s, e = _window(start, end)
    return Rollup(*_rollup_alarms(alarms, s, e, tz), _rollup_bedside(sessions, s, e, tz),
                  _rollup_devices(device_intervals, s, e, tz),
                  _rollup_hygiene(room_events, dispenser_events, s, e, tz, within_s))


def _rollup_alarms(alarms, s, e, tz):
    d = alarm_durations(alarms, s, e, tz)
    keys = ["day", "ward_id", "shift", "kind"]
    g = d.groupby(keys, sort=True)
    counts = pd.DataFrame({"alarms": g.size(), "escalated": g["escalated"].sum().astype("int64"),
                           "acked": g["time_to_ack_s"].count(), "ack_s_sum": g["time_to_ack_s"].sum(),
                           "resolved": g["time_to_resolve_s"].count(),
                           "resolve_s_sum": g["time_to_resolve_s"].sum()}).reset_index()
    long = d.melt(id_vars=keys, value_vars=["time_to_ack_s", "time_to_resolve_s"], var_name="metric",
                  value_name="value_s").dropna(subset=["value_s"])
    long["bucket_s"] = _bucket_upper(long["value_s"])
    hist = long.groupby([*keys, "metric", "bucket_s"]).size().rename("count").reset_index()
    return counts, hist


def _rollup_bedside(sessions, s, e, tz):
    f = _split_days(_clip(_checked_intervals(sessions, SESSION_COLUMNS, "bedside sessions", e), s, e), tz)
    f = f.assign(bedside_s=_seconds(f["end"] - f["start"]), shift=assign_shift(f["start"], tz)["shift"])
    g = f.groupby(["day", "ward_id", "shift"])
    return pd.DataFrame({"sessions": g.size(), "staff": g["staff_id"].nunique(),
                         "bedside_s": g["bedside_s"].sum()}).reset_index()


def _rollup_devices(intervals, s, e, tz):
    f = _split_days(_clip(_device_statuses(intervals, e), s, e), tz)
    f = f.assign(duration_s=_seconds(f["end"] - f["start"]))
    return f.groupby(["day", "ward_id", "device_type", "status"])["duration_s"].sum().reset_index()


def _rollup_hygiene(room_events, dispenser_events, s, e, tz, within_s):
    o = hand_hygiene_opportunities(room_events, dispenser_events, s, e, within_s, tz)
    g = o.groupby(["day", "ward_id", "shift"])["compliant"]
    return pd.DataFrame({"opportunities": g.size(), "compliant": g.sum().astype("int64")}).reset_index()


def _days(frame: pd.DataFrame, start, end, tz: str) -> pd.DataFrame:
    s, e = _window(start, end)
    lo, hi = s.tz_convert(tz), e.tz_convert(tz)
    if lo != lo.normalize() or hi != hi.normalize():
        raise InvalidInput(f"the rollup answers whole local days: {lo} and {hi} must be midnights in {tz}")
    return frame[(frame["day"] >= lo.tz_localize(None)) & (frame["day"] < hi.tz_localize(None))]


def _hist_quantile(hist: pd.DataFrame, keys: list[str], q: float) -> pd.Series:
    """Upper bucket edge bounding the q-quantile, per group, from summed histogram counts.

    The raw quantile (linear interpolation) lies between the sorted values at ranks floor(p) and
    ceil(p), p = q·(n−1); the bucket of the value at rank ceil(p) is therefore an upper bound even
    when two middle values straddle a bucket edge."""
    h = hist.groupby([*keys, "bucket_s"])["count"].sum().reset_index().sort_values([*keys, "bucket_s"])
    cum = h.groupby(keys)["count"].cumsum()
    total = h.groupby(keys)["count"].transform("sum")
    need = np.ceil(q * (total - 1)) + 1
    return h[cum >= need].groupby(keys)["bucket_s"].first()


def operations_page(rollup: Rollup, beds: pd.DataFrame, start, end, tz: str = DEFAULT_TZ) -> dict[str, pd.DataFrame]:
    """Every rollup-backed aggregate of the operations page for whole local days [start, end):
    alarm_response (mean, median/p90 as "≤ bucket" edges), escalation, alarm_load, bedside,
    device_utilisation, hand_hygiene and daily_alarms (trend). Small tables (excursions, waste,
    par levels, occupancy) are cheap enough to compute from raw frames with their own functions."""
    a = _days(rollup.alarms, start, end, tz)
    keys = ["kind", "ward_id", "shift"]
    summed = a.groupby(keys)[["alarms", "escalated", "acked", "ack_s_sum", "resolved", "resolve_s_sum"]].sum()
    hist = _days(rollup.response_hist, start, end, tz)
    response = []
    for metric, n_col, sum_col in (("time_to_ack_s", "acked", "ack_s_sum"),
                                   ("time_to_resolve_s", "resolved", "resolve_s_sum")):
        h = hist[hist["metric"] == metric]
        part = pd.DataFrame({"metric": metric, "alarms": summed["alarms"], "measured": summed[n_col],
                             "pending": summed["alarms"] - summed[n_col],
                             "mean_s": summed[sum_col] / summed[n_col].where(summed[n_col] > 0),
                             "median_le_s": _hist_quantile(h, keys, 0.5), "p90_le_s": _hist_quantile(h, keys, 0.9)})
        response.append(part.reset_index())
    esc = a.groupby(["kind", "ward_id"])[["alarms", "escalated"]].sum().reset_index()
    esc["escalation_rate"] = esc["escalated"] / esc["alarms"]
    bed = _days(rollup.bedside, start, end, tz).groupby(["ward_id", "shift"])[["sessions", "staff", "bedside_s"]].sum()
    bed = bed.rename(columns={"staff": "staff_shifts"}).reset_index()
    bed["mean_session_s"] = bed["bedside_s"] / bed["sessions"]
    dev = _days(rollup.devices, start, end, tz).groupby(["ward_id", "device_type", "status"])["duration_s"].sum()
    hh = _days(rollup.hand_hygiene, start, end, tz).groupby(["ward_id", "shift"])[["opportunities", "compliant"]].sum().reset_index()
    hh["compliance"] = hh["compliant"] / hh["opportunities"]
    return {"alarm_response": pd.concat(response, ignore_index=True),
            "escalation": esc,
            "alarm_load": _per_bed_day(a.groupby("ward_id")["alarms"].sum(), beds, start, end),
            "bedside": bed,
            "device_utilisation": _status_shares(dev, ["ward_id", "device_type"]),
            "hand_hygiene": hh,
            "daily_alarms": a.groupby(["day", "kind"])["alarms"].sum().reset_index()}


def operations_page_raw(alarms, sessions, device_intervals, room_events, dispenser_events, beds,
                        start, end, tz: str = DEFAULT_TZ) -> dict[str, pd.DataFrame]:
    """The same page straight from raw frames (exact quantiles); fine for one ward or a few days."""
    d = alarm_durations(alarms, start, end, tz)
    return {"alarm_response": alarm_response(alarms, start, end, tz=tz),
            "escalation": escalation_rate(alarms, start, end, tz=tz),
            "alarm_load": alarm_load(alarms, beds, start, end),
            "bedside": bedside_time(sessions, start, end, tz=tz),
            "device_utilisation": device_utilisation(device_intervals, start, end),
            "hand_hygiene": hand_hygiene_compliance(room_events, dispenser_events, start, end, tz=tz),
            "daily_alarms": d.groupby(["day", "kind"]).size().rename("alarms").reset_index()}
