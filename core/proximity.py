"""Contact tracing on SocioPatterns-shaped contact lists.

A contact list has one row per 20-second window in which two people were close:
`ts` (tz-aware UTC, the END of the window), `person_a`, `person_b`, `role_a`, `role_b`
(roles PAT / NUR / MED / ADM as in the SocioPatterns hospital data set, Vanhems et al. 2013).

Sources of contact lists:
- `read_sociopatterns`: the public SocioPatterns files (`t i j Si Sj`), used as an external check.
- `colocation_contacts`: our own presence intervals, discretised to the same 20-s windows, so the
  same `exposures` / `second_degree` / `contact_network` code serves both.

Time windows follow the SocioPatterns convention: a window ending at `ts` covers (ts - 20 s, ts], so
a query (start, end] counts the windows with start < ts <= end.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from core.errors import InvalidInput
from core.models import time_window, utc_timestamp

CONTACT_COLUMNS = ["ts", "person_a", "person_b", "role_a", "role_b"]
EXPOSURE_COLUMNS = ["other_id", "other_role", "episodes", "contact_s", "first_contact", "last_contact"]
SECOND_DEGREE_COLUMNS = ["via_id", "via_role", "other_id", "other_role", "episodes", "contact_s",
                         "first_contact", "last_contact", "also_first_degree"]
NODE_COLUMNS = ["person_id", "role", "degree", "contact_s"]
EDGE_COLUMNS = ["person_a", "person_b", "role_a", "role_b", "windows", "episodes", "contact_s"]
PRESENCE_COLUMNS = ["entity_id", "role", "room_id", "start", "end"]
POSITION_COLUMNS = ["entity_id", "ts", "x_m", "y_m"]

SOCIOPATTERNS_ROLES = ("PAT", "NUR", "MED", "ADM")
# SocioPatterns sensors report one record per 20-s window (Vanhems et al., PLoS ONE 2013, e73970).
WINDOW_S = 20

# Our roles → SocioPatterns categories: NUR = nurses and nurses' aides, MED = medical doctors,
# ADM = everyone else on staff (the Lyon data set has no other staff category).
_ROLE_MAP = {
    "patient": "PAT",
    "nurse": "NUR", "charge_nurse": "NUR", "hca": "NUR",
    "doctor": "MED",
    "porter": "ADM", "cleaner": "ADM", "pharmacist": "ADM", "ward_manager": "ADM",
    **{r: r for r in SOCIOPATTERNS_ROLES},
}


class NaiveTimestamp(InvalidInput):
    """A time without a zone was given where Wardsight needs tz-aware times."""


@dataclass(frozen=True)
class BadLine:
    line_no: int      # 1-based line number in the (decompressed) file
    reason: str
    raw: str


class ContactFileError(InvalidInput):
    """A SocioPatterns contact file cannot be read; `bad_lines` lists every malformed line."""

    def __init__(self, message: str, bad_lines: tuple[BadLine, ...] = ()):
        super().__init__(message)
        self.bad_lines = bad_lines


class UnknownRole(InvalidInput):
    """A role cannot be mapped to a SocioPatterns category (PAT/NUR/MED/ADM)."""


class ContactNetwork(NamedTuple):
    nodes: pd.DataFrame    # NODE_COLUMNS
    edges: pd.DataFrame    # EDGE_COLUMNS


# --------------------------------------------------------------------------------------- helpers

def _aware_utc(ts, name: str) -> pd.Timestamp:
    return utc_timestamp(ts, name, NaiveTimestamp)


def _window(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    return time_window(start, end, NaiveTimestamp, InvalidInput)


def _require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInput(f"{what} is missing columns {missing}; expected {columns}")


def _checked_contacts(contacts: pd.DataFrame) -> pd.DataFrame:
    _require_columns(contacts, CONTACT_COLUMNS, "contacts")
    if isinstance(contacts["ts"].dtype, pd.DatetimeTZDtype):
        return contacts
    if len(contacts) == 0:
        return contacts.assign(ts=pd.Series(dtype="datetime64[us, UTC]", index=contacts.index))
    raise NaiveTimestamp(f"contacts.ts must be tz-aware datetimes, got {contacts['ts'].dtype}")


def sociopatterns_role(role) -> str | pd.Series:
    """Map one of our roles (StaffRole values, "patient") or a SocioPatterns role to PAT/NUR/MED/ADM.

    Accepts a scalar or a Series; an unknown role raises `UnknownRole` (devices, drugs and bins are
    not people and must be filtered out by the caller, never guessed)."""
    if isinstance(role, pd.Series):
        uniques = pd.unique(role)
        known = {u: _ROLE_MAP.get(_role_key(u)) for u in uniques}
        unknown = sorted(str(u) for u, m in known.items() if m is None)
        if unknown:
            raise UnknownRole(f"roles {unknown[:10]} have no SocioPatterns category")
        return role.map(known).astype("str")
    mapped = _ROLE_MAP.get(_role_key(role))
    if mapped is None:
        raise UnknownRole(f"role {role!r} has no SocioPatterns category")
    return mapped


def _role_key(role) -> str:
    text = str(getattr(role, "value", role))      # StaffRole members → their value
    return text.upper() if text.upper() in SOCIOPATTERNS_ROLES else text.lower()


# ------------------------------------------------------------------------------------ reading

def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":          # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ContactFileError(f"cannot read contact file {path}: {exc}") from exc


def _bad_lines(lines: pd.Series, fields: pd.Series) -> list[BadLine]:
    """Every line that is not `t i j Si Sj` with t a non-negative integer, i != j, known roles."""
    n_fields = fields.str.len()
    padded = fields.where(n_fields == 5, None)
    t, i, j, si, sj = (padded.str[k] for k in range(5))
    reasons = pd.Series("", index=lines.index, dtype="str")
    checks = [
        (n_fields != 5, "expected 5 fields `t i j Si Sj`"),
        ((n_fields == 5) & ~t.fillna("").str.fullmatch(r"\d+"), "t is not a non-negative integer"),
        ((n_fields == 5) & (i == j), "self-contact (i == j)"),
        ((n_fields == 5) & ~si.isin(SOCIOPATTERNS_ROLES), "Si is not one of PAT/NUR/MED/ADM"),
        ((n_fields == 5) & ~sj.isin(SOCIOPATTERNS_ROLES), "Sj is not one of PAT/NUR/MED/ADM"),
    ]
    for mask, reason in checks:
        reasons = reasons.mask(mask.fillna(True) & (reasons == ""), reason)
    bad = reasons[reasons != ""]
    return [BadLine(int(k) + 1, reasons[k], lines[k]) for k in bad.index]


def read_sociopatterns(path, origin) -> pd.DataFrame:
    """Read a SocioPatterns contact list (`t i j Si Sj`, tab/space separated, .dat or .dat.gz).

    `origin` is the tz-aware time t counts from (naive → `NaiveTimestamp`, a ValueError). Returns
    CONTACT_COLUMNS with ts = origin + t seconds (UTC), one row per data line (no dedup, no
    dropping; ids kept as strings). Blank lines are not data lines. Any malformed line raises
    `ContactFileError` naming the line numbers; `.bad_lines` lists them all with a reason."""
    origin_utc = _aware_utc(origin, "origin")
    path = Path(path)
    lines = pd.Series(_read_text(path).splitlines(), dtype="str")
    lines = lines[lines.str.strip() != ""]
    fields = lines.str.split()
    bad = _bad_lines(lines, fields)
    if bad:
        shown = "; ".join(f"line {b.line_no}: {b.reason} ({b.raw[:40]!r})" for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ContactFileError(f"{path.name}: {len(bad)} malformed line(s): {shown}{more}", tuple(bad))
    t_s = fields.str[0].astype("int64").to_numpy()
    ts = origin_utc + pd.to_timedelta(t_s, unit="s")
    return pd.DataFrame({
        "ts": ts,
        "person_a": fields.str[1].astype("str").to_numpy(),
        "person_b": fields.str[2].astype("str").to_numpy(),
        "role_a": fields.str[3].astype("str").to_numpy(),
        "role_b": fields.str[4].astype("str").to_numpy(),
    }, columns=CONTACT_COLUMNS)


# ------------------------------------------------------------------------------------ episodes

def _episode_table(windows: pd.DataFrame, keys: list[str], role_col: str, gap_s: float,
                   window_s: float) -> pd.DataFrame:
    """windows: distinct (keys..., ts) rows → per key: role, episodes, contact_s, first/last contact.

    A window more than window_s + gap_s after the previous one of the same key opens a new episode
    (exactly window_s + gap_s apart still continues it)."""
    w = windows.sort_values(keys + ["ts"], kind="stable")
    step = w.groupby(keys, sort=False)["ts"].diff()
    new_episode = step.isna() | (step > pd.Timedelta(seconds=window_s + gap_s))
    w = w.assign(_new=new_episode.astype("int64"))
    out = w.groupby(keys, sort=False).agg(
        role=(role_col, "last"), episodes=("_new", "sum"), windows=("ts", "size"),
        first_end=("ts", "min"), last_contact=("ts", "max")).reset_index()
    out["contact_s"] = (out["windows"] * window_s).astype("int64" if float(window_s).is_integer() else "float64")
    # ts marks the END of a window: the first contact began one window earlier.
    out["first_contact"] = out["first_end"] - pd.Timedelta(seconds=window_s)
    return out


def _person_windows(contacts: pd.DataFrame, person_id: str, start_utc, end_utc) -> pd.DataFrame:
    """Windows involving person_id in (start, end], seen from the person: other_id, other_role, ts.
    A window listed twice (either order) counts once."""
    ts = contacts["ts"]
    a, b = contacts["person_a"].astype("str"), contacts["person_b"].astype("str")
    pid = str(person_id)
    hit = ((a == pid) ^ (b == pid)) & (ts > start_utc) & (ts <= end_utc)   # ^ excludes self-pairs
    sub = contacts[hit]
    is_a = (sub["person_a"].astype("str") == pid).to_numpy()
    frame = pd.DataFrame({
        "other_id": np.where(is_a, sub["person_b"].astype("str"), sub["person_a"].astype("str")),
        "other_role": np.where(is_a, sub["role_b"].astype("str"), sub["role_a"].astype("str")),
        "ts": sub["ts"].dt.tz_convert("UTC").to_numpy(),
    })
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["other_id"] = frame["other_id"].astype("str")
    frame["other_role"] = frame["other_role"].astype("str")
    return frame.drop_duplicates(["other_id", "ts"])


def _empty(columns: list[str], time_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    for c in time_cols:
        df[c] = pd.Series(dtype="datetime64[us, UTC]")
    return df


def exposures(contacts: pd.DataFrame, person_id, start, end, gap_s: float = 60,
              window_s: float = WINDOW_S) -> pd.DataFrame:
    """Who `person_id` was in contact with during (start, end], one row per other person.

    Counts the 20-s windows (start < ts <= end) of pairs that include person_id. contact_s =
    window_s × windows; a window more than window_s + gap_s after the previous window of the same
    pair starts a new episode. first_contact = start of the first window (ts − window_s),
    last_contact = end (ts) of the last one. Sorted by contact_s descending, then other_id."""
    contacts = _checked_contacts(contacts)
    if gap_s < 0:
        raise InvalidInput(f"gap_s={gap_s} is negative")
    start_utc, end_utc = _window(start, end)
    windows = _person_windows(contacts, person_id, start_utc, end_utc)
    if windows.empty:
        return _typed_exposures(_empty(EXPOSURE_COLUMNS, ("first_contact", "last_contact")))
    table = _episode_table(windows, ["other_id"], "other_role", gap_s, window_s)
    table = table.rename(columns={"role": "other_role"})[EXPOSURE_COLUMNS]
    return _typed_exposures(table.sort_values(["contact_s", "other_id"], ascending=[False, True],
                                              kind="stable").reset_index(drop=True))


def _typed_exposures(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"other_id": "str", "other_role": "str", "episodes": "int64", "contact_s": "int64"})


def second_degree(contacts: pd.DataFrame, person_id, start, end, gap_s: float = 60,
                  min_contact_s: float = 0, window_s: float = WINDOW_S) -> pd.DataFrame:
    """Contacts of contacts: for each first-degree contact X of person_id in (start, end] with at
    least `min_contact_s` of contact, X's contacts with others (not person_id) in windows AFTER X's
    first window with person_id (ts > that window's ts) and ts <= end.

    One row per (via_id, other_id) with episodes / contact_s / first_contact / last_contact as in
    `exposures`, plus `also_first_degree` (the other person met person_id directly too). Sorted by
    contact_s descending."""
    first = exposures(contacts, person_id, start, end, gap_s=gap_s, window_s=window_s)
    first = first[first["contact_s"] >= min_contact_s]
    if first.empty:
        return _empty(SECOND_DEGREE_COLUMNS, ("first_contact", "last_contact"))
    _, end_utc = _window(start, end)
    exposed_from = (first["first_contact"] + pd.Timedelta(seconds=window_s)).rename("exposed_from")
    via = pd.DataFrame({"via_id": first["other_id"], "via_role": first["other_role"],
                        "exposed_from": exposed_from})
    both = _both_directions(contacts)
    onward = both.merge(via, left_on="self_id", right_on="via_id")
    onward = onward[(onward["ts"] > onward["exposed_from"]) & (onward["ts"] <= end_utc)
                    & (onward["other_id"] != str(person_id))]
    if onward.empty:
        return _empty(SECOND_DEGREE_COLUMNS, ("first_contact", "last_contact"))
    onward = onward.drop_duplicates(["via_id", "other_id", "ts"])
    table = _episode_table(onward, ["via_id", "other_id"], "other_role", gap_s, window_s)
    table = table.rename(columns={"role": "other_role"})
    table = table.merge(via[["via_id", "via_role"]], on="via_id")
    table["also_first_degree"] = table["other_id"].isin(set(first["other_id"]))
    table = table[SECOND_DEGREE_COLUMNS].astype({"episodes": "int64"})
    return table.sort_values(["contact_s", "via_id", "other_id"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def _both_directions(contacts: pd.DataFrame) -> pd.DataFrame:
    """Each contact row twice, as (self_id, other_id, other_role, ts); self-pairs removed."""
    a, b = contacts["person_a"].astype("str"), contacts["person_b"].astype("str")
    keep = a != b
    c = contacts[keep]
    ab = pd.DataFrame({"self_id": c["person_a"].astype("str"), "other_id": c["person_b"].astype("str"),
                       "other_role": c["role_b"].astype("str"), "ts": c["ts"]})
    ba = pd.DataFrame({"self_id": c["person_b"].astype("str"), "other_id": c["person_a"].astype("str"),
                       "other_role": c["role_a"].astype("str"), "ts": c["ts"]})
    return pd.concat([ab, ba], ignore_index=True)


def contact_network(contacts: pd.DataFrame, start, end, gap_s: float = 60,
                    window_s: float = WINDOW_S) -> ContactNetwork:
    """Nodes and weighted edges of the contact network in (start, end] for a network view.

    edges: one row per unordered pair (person_a < person_b as strings) with windows, episodes and
    contact_s (= weight). nodes: every person with a contact, role, degree (distinct partners) and
    total contact_s. Duplicate windows of a pair (either order) count once."""
    contacts = _checked_contacts(contacts)
    start_utc, end_utc = _window(start, end)
    c = contacts[(contacts["ts"] > start_utc) & (contacts["ts"] <= end_utc)
                 & (contacts["person_a"].astype("str") != contacts["person_b"].astype("str"))]
    if c.empty:
        return ContactNetwork(_empty(NODE_COLUMNS), _empty(EDGE_COLUMNS))
    a, b = c["person_a"].astype("str").to_numpy(), c["person_b"].astype("str").to_numpy()
    swap = a > b
    pairs = pd.DataFrame({
        "person_a": np.where(swap, b, a), "person_b": np.where(swap, a, b),
        "role_a": np.where(swap, c["role_b"].astype("str"), c["role_a"].astype("str")),
        "role_b": np.where(swap, c["role_a"].astype("str"), c["role_b"].astype("str")),
        "ts": c["ts"].to_numpy()}).drop_duplicates(["person_a", "person_b", "ts"])
    pairs["ts"] = pd.to_datetime(pairs["ts"], utc=True)
    table = _episode_table(pairs, ["person_a", "person_b"], "role_a", gap_s, window_s)
    roles_b = pairs.groupby(["person_a", "person_b"], sort=False)["role_b"].last().rename("role_b")
    edges = table.rename(columns={"role": "role_a"}).join(roles_b, on=["person_a", "person_b"])
    edges = edges[EDGE_COLUMNS].astype({"person_a": "str", "person_b": "str", "episodes": "int64"})
    edges = edges.sort_values(["contact_s", "person_a", "person_b"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)
    return ContactNetwork(_nodes(edges), edges)


def _nodes(edges: pd.DataFrame) -> pd.DataFrame:
    ends = pd.concat([
        edges[["person_a", "role_a", "contact_s"]].set_axis(["person_id", "role", "contact_s"], axis=1),
        edges[["person_b", "role_b", "contact_s"]].set_axis(["person_id", "role", "contact_s"], axis=1)])
    nodes = ends.groupby("person_id").agg(role=("role", "first"), degree=("role", "size"),
                                          contact_s=("contact_s", "sum")).reset_index()
    return nodes[NODE_COLUMNS].sort_values(["contact_s", "person_id"], ascending=[False, True],
                                           kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------- co-location

def _epoch_ms(s: pd.Series) -> np.ndarray:
    return s.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def _presence_windows(presence: pd.DataFrame, start_utc, end_utc, window_ms: int) -> pd.DataFrame:
    """Explode presence intervals into (entity, role, room, k) rows, window k ending at k·window_ms
    (epoch-aligned so every query sees the same windows). An interval [s, e) is in window k when it
    overlaps (k·w − w, k·w] for a positive time."""
    s_ms, e_ms = _epoch_ms(presence["start"]), _epoch_ms(presence["end"])
    k_lo = int(start_utc.value // 1_000_000) // window_ms + 1          # first window end > start
    k_hi = int(end_utc.value // 1_000_000) // window_ms                # last window end <= end
    k_min = np.maximum(s_ms // window_ms + 1, k_lo)
    k_max = np.minimum(-(-e_ms // window_ms), k_hi)
    counts = np.where(e_ms > s_ms, np.maximum(k_max - k_min + 1, 0), 0)
    rows = np.repeat(np.arange(len(presence)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    out = pd.DataFrame({
        "entity_id": presence["entity_id"].to_numpy()[rows],
        "role": presence["sp_role"].to_numpy()[rows],
        "room_id": presence["room_id"].to_numpy()[rows],
        "k": np.repeat(k_min, counts) + offsets,
    })
    return out.drop_duplicates(["entity_id", "room_id", "k"])


def _room_pairs(win: pd.DataFrame, max_rows: int = 2_000_000) -> pd.DataFrame:
    """Pairs (a < b) sharing a room in a window: self-merge on (room, window), in chunks cut at key
    boundaries so the quadratic merge output stays bounded in memory."""
    win = win.assign(key=pd.factorize(win["room_id"])[0].astype("int64")).sort_values(["k", "key"])
    key = win["k"].to_numpy() * (int(win["key"].max()) + 1) + win["key"].to_numpy()
    win = win.assign(key=key)
    bounds = np.flatnonzero(np.diff(key)) + 1
    cuts = [0]
    for b in bounds[np.searchsorted(bounds, np.arange(max_rows, len(win), max_rows))]:
        if b > cuts[-1]:
            cuts.append(int(b))
    cuts.append(len(win))
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        chunk = win.iloc[lo:hi][["key", "k", "entity_id", "role"]]
        m = chunk.merge(chunk[["key", "entity_id", "role"]], on="key", suffixes=("_a", "_b"))
        parts.append(m[m["entity_id_a"] < m["entity_id_b"]])
    pairs = pd.concat(parts, ignore_index=True)
    return pairs.drop_duplicates(["entity_id_a", "entity_id_b", "k"])[
        ["k", "entity_id_a", "entity_id_b", "role_a", "role_b"]]


def _near_pairs(positions: pd.DataFrame, start_utc, end_utc, window_ms: int,
                within_m: float) -> pd.DataFrame:
    """(a < b, k) pairs whose last position sample in window k is within `within_m` metres.

    One cKDTree for all windows: the window index is a third coordinate spaced far more than
    within_m apart, so query_pairs never pairs points of different windows (same result as one
    tree per window, without a Python loop over windows)."""
    _require_columns(positions, POSITION_COLUMNS, "positions")
    ts_ms = _epoch_ms(positions["ts"])
    k = -(-ts_ms // window_ms)                      # sample at ts falls in the window ending at ceil
    p = pd.DataFrame({"entity_id": positions["entity_id"].astype("str").to_numpy(), "k": k, "ts": ts_ms,
                      "x_m": positions["x_m"].to_numpy(float), "y_m": positions["y_m"].to_numpy(float)})
    if "floor_id" in positions.columns:
        p["floor"] = pd.factorize(positions["floor_id"])[0]
    else:
        p["floor"] = 0
    k_lo = int(start_utc.value // 1_000_000) // window_ms + 1
    k_hi = int(end_utc.value // 1_000_000) // window_ms
    p = p[(p["k"] >= k_lo) & (p["k"] <= k_hi)].dropna(subset=["x_m", "y_m"])
    p = p.sort_values("ts").drop_duplicates(["entity_id", "k"], keep="last").reset_index(drop=True)
    if p.empty:
        return pd.DataFrame({"k": [], "entity_id_a": [], "entity_id_b": []})
    spread = float(np.ptp(p["x_m"]) + np.ptp(p["y_m"])) + 2 * within_m + 1.0
    coords = np.column_stack([p["x_m"], p["y_m"], (p["k"] - k_lo) * spread, p["floor"] * spread])
    ij = cKDTree(coords).query_pairs(r=within_m, output_type="ndarray")
    ea, eb = p["entity_id"].to_numpy()[ij[:, 0]], p["entity_id"].to_numpy()[ij[:, 1]]
    return pd.DataFrame({"k": p["k"].to_numpy()[ij[:, 0]],
                         "entity_id_a": np.minimum(ea, eb), "entity_id_b": np.maximum(ea, eb)})


def colocation_contacts(presence_intervals: pd.DataFrame, start, end, window_s: float = WINDOW_S,
                        within_m: float | None = None, positions: pd.DataFrame | None = None) -> pd.DataFrame:
    """SocioPatterns-shaped contacts (CONTACT_COLUMNS) derived from our presence intervals.

    presence_intervals: entity_id, role (our role or "patient"; mapped by `sociopatterns_role`),
    room_id, start, end (tz-aware; NaT end = still there, treated as `end`). Windows are
    epoch-aligned, window_s long, ending at ts with start < ts <= end; two people are in contact in
    a window when both were in the same room during it (positive overlap). With `within_m`, they
    must also be within that many metres at their last position sample in the window (`positions`:
    entity_id, ts, x_m, y_m[, floor_id]; no sample → no confirmed contact). person_a < person_b."""
    _require_columns(presence_intervals, PRESENCE_COLUMNS, "presence_intervals")
    if within_m is not None and positions is None:
        raise InvalidInput("within_m needs position samples (positions=...)")
    if window_s <= 0:
        raise InvalidInput(f"window_s={window_s} must be positive")
    start_utc, end_utc = _window(start, end)
    window_ms = int(round(window_s * 1000))
    presence = _checked_presence(presence_intervals, end_utc)
    win = _presence_windows(presence, start_utc, end_utc, window_ms)
    if win.empty:
        return _empty(CONTACT_COLUMNS, ("ts",))
    pairs = _room_pairs(win)
    if within_m is not None:
        near = _near_pairs(positions, start_utc, end_utc, window_ms, within_m)
        pairs = pairs.merge(near, on=["k", "entity_id_a", "entity_id_b"])
    out = pd.DataFrame({
        "ts": pd.to_datetime(pairs["k"].to_numpy() * window_ms, unit="ms", utc=True),
        "person_a": pairs["entity_id_a"].astype("str").to_numpy(),
        "person_b": pairs["entity_id_b"].astype("str").to_numpy(),
        "role_a": pairs["role_a"].astype("str").to_numpy(),
        "role_b": pairs["role_b"].astype("str").to_numpy()}, columns=CONTACT_COLUMNS)
    return out.sort_values(["ts", "person_a", "person_b"], kind="stable").reset_index(drop=True)


def _checked_presence(presence: pd.DataFrame, end_utc) -> pd.DataFrame:
    p = presence.copy()
    for col in ("start", "end"):
        if not isinstance(p[col].dtype, pd.DatetimeTZDtype):
            raise NaiveTimestamp(f"presence_intervals.{col} must be tz-aware datetimes, got {p[col].dtype}")
    if p["start"].isna().any():
        raise InvalidInput(f"presence_intervals has {int(p['start'].isna().sum())} row(s) without a start")
    p["end"] = p["end"].fillna(end_utc)
    backwards = p["end"] < p["start"]
    if backwards.any():
        ids = p.loc[backwards, "entity_id"].astype("str").head(5).tolist()
        raise InvalidInput(f"{int(backwards.sum())} presence interval(s) end before they start (entities {ids})")
    p["entity_id"] = p["entity_id"].astype("str")
    p["sp_role"] = sociopatterns_role(p["role"])
    return p
