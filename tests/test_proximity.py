"""Contact tracing: SocioPatterns reader, exposures/episodes, second degree, network, co-location.

Expected values are worked out by hand from the tiny files below (20-s windows, window ts = END).
"""
from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from datetime import datetime

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from core.errors import InvalidInput
from core.proximity import (CONTACT_COLUMNS, EXPOSURE_COLUMNS, ContactFileError, NaiveTimestamp,
                            UnknownRole, colocation_contacts, contact_network, exposures,
                            read_sociopatterns, second_degree, sociopatterns_role)

ORIGIN = pd.Timestamp("2024-03-01 08:00", tz="UTC")


def at(seconds: float) -> pd.Timestamp:
    return ORIGIN + pd.Timedelta(seconds=seconds)


def contacts_of(rows) -> pd.DataFrame:
    """rows: (t_s, a, b) with A=NUR, B=PAT, C=MED, D=ADM, E=PAT."""
    role = {"A": "NUR", "B": "PAT", "C": "MED", "D": "ADM", "E": "PAT"}
    return pd.DataFrame({"ts": [at(t) for t, _, _ in rows],
                         "person_a": [a for _, a, _ in rows], "person_b": [b for _, _, b in rows],
                         "role_a": [role[a] for _, a, _ in rows], "role_b": [role[b] for _, _, b in rows]},
                        columns=CONTACT_COLUMNS)


def write(tmp_path, text: str, name: str = "c.dat"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ------------------------------------------------------------------------------------ reader

SMALL = "20\tA\tB\tNUR\tPAT\n40 A  B NUR PAT\n\n140\tB\tA\tPAT\tNUR\n60\t7\t12\tMED\tADM\n"


@pytest.mark.parametrize("name", ["c.dat", "c.dat.gz"], ids=["plain", "gzip"])
def test_read_sociopatterns_rows_times_and_ids(tmp_path, name):
    df = read_sociopatterns(write(tmp_path, SMALL, name), pd.Timestamp("2024-03-01 09:00", tz="Europe/Paris"))
    assert list(df.columns) == CONTACT_COLUMNS
    assert len(df) == 4                                   # blank line is not a row; nothing else dropped
    # 09:00 Paris (CET, UTC+1) + 20 s = 08:00:20 UTC
    assert df["ts"].tolist() == [pd.Timestamp("2024-03-01 08:00:20", tz="UTC"), pd.Timestamp("2024-03-01 08:00:40", tz="UTC"),
                                 pd.Timestamp("2024-03-01 08:02:20", tz="UTC"), pd.Timestamp("2024-03-01 08:01:00", tz="UTC")]
    assert str(df["ts"].dt.tz) == "UTC"
    assert df.loc[3, ["person_a", "person_b", "role_a", "role_b"]].tolist() == ["7", "12", "MED", "ADM"]
    assert isinstance(df.loc[3, "person_a"], str)


def test_read_sociopatterns_keeps_duplicate_rows(tmp_path):
    df = read_sociopatterns(write(tmp_path, "20 A B NUR PAT\n20 A B NUR PAT\n"), ORIGIN)
    assert len(df) == 2


def test_read_sociopatterns_refuses_naive_origin(tmp_path):
    path = write(tmp_path, SMALL)
    with pytest.raises(NaiveTimestamp):
        read_sociopatterns(path, datetime(2010, 12, 6, 13, 0))
    assert issubclass(NaiveTimestamp, ValueError) and issubclass(NaiveTimestamp, InvalidInput)


@pytest.mark.parametrize("bad, reason", [
    ("x A B NUR PAT", "not a non-negative integer"),
    ("-20 A B NUR PAT", "not a non-negative integer"),
    ("20 A B NUR", "expected 5 fields"),
    ("20 A B NUR PAT extra", "expected 5 fields"),
    ("20 A A NUR NUR", "self-contact"),
    ("20 A B NUR DOC", "Sj is not one of"),
    ("20 A B doc PAT", "Si is not one of"),
], ids=["t-text", "t-negative", "four-fields", "six-fields", "self", "role-j", "role-i"])
def test_malformed_line_named_by_number(tmp_path, bad, reason):
    # line 1 ok, line 2 blank, line 3 ok, line 4 bad → the error must say line 4
    path = write(tmp_path, f"20 A B NUR PAT\n\n40 A B NUR PAT\n{bad}\n60 A B NUR PAT\n")
    with pytest.raises(ContactFileError, match="line 4") as info:
        read_sociopatterns(path, ORIGIN)
    assert [b.line_no for b in info.value.bad_lines] == [4]
    assert reason in info.value.bad_lines[0].reason


def test_all_malformed_lines_are_collected(tmp_path):
    path = write(tmp_path, "x A B NUR PAT\n20 A B NUR PAT\n20 A B\n")
    with pytest.raises(ContactFileError) as info:
        read_sociopatterns(path, ORIGIN)
    assert [b.line_no for b in info.value.bad_lines] == [1, 3]


def test_corrupt_gzip_is_a_contact_file_error(tmp_path):
    path = tmp_path / "c.dat.gz"
    path.write_bytes(gzip.compress(SMALL.encode())[:30])
    with pytest.raises(ContactFileError):
        read_sociopatterns(path, ORIGIN)


# --------------------------------------------------------------------------------- exposures

@pytest.mark.parametrize("rows, gap_s, episodes, contact_s", [
    ([(20, "A", "B")], 60, 1, 20),
    ([(20, "A", "B"), (40, "A", "B"), (60, "B", "A")], 60, 1, 60),
    ([(20, "A", "B"), (100, "A", "B")], 60, 1, 40),          # 80 s apart = 20 + gap_s: same episode
    ([(20, "A", "B"), (101, "A", "B")], 60, 2, 40),          # 81 s apart: new episode
    ([(20, "A", "B"), (40, "A", "B")], 0, 1, 40),            # contiguous windows with gap_s=0
    ([(20, "A", "B"), (60, "A", "B")], 0, 2, 40),            # one missing window with gap_s=0
    ([(20, "A", "B"), (20, "B", "A")], 60, 1, 20),           # same window listed both ways counts once
    ([(20, "A", "B"), (100, "A", "B"), (181, "B", "A"), (201, "A", "B")], 60, 2, 80),
], ids=["single", "back-to-back", "exact-gap-stays", "gap-plus-1s-splits", "gap0-contiguous",
        "gap0-hole", "duplicate-window", "mixed"])
def test_exposure_episodes_and_duration(rows, gap_s, episodes, contact_s):
    out = exposures(contacts_of(rows), "A", at(0), at(1000), gap_s=gap_s)
    assert out[["other_id", "other_role", "episodes", "contact_s"]].values.tolist() == [["B", "PAT", episodes, contact_s]]


def test_exposure_window_bounds_start_excluded_end_included():
    rows = [(20, "A", "B"), (40, "A", "B"), (60, "A", "C"), (80, "C", "A")]
    out = exposures(contacts_of(rows), "A", start=at(20), end=at(80))
    # window ending at start (20) is out; windows ending at end (80) are in
    assert out[["other_id", "episodes", "contact_s"]].values.tolist() == [["C", 1, 40], ["B", 1, 20]]
    c = out.set_index("other_id").loc["C"]
    assert c["first_contact"] == at(40) and c["last_contact"] == at(80)   # first window covers (40, 60]


def test_exposure_columns_sorting_and_others_ignored():
    rows = [(20, "A", "B"), (20, "A", "C"), (40, "C", "A"), (60, "C", "D"), (20, "A", "A")]
    out = exposures(contacts_of(rows), "A", at(0), at(100))
    assert list(out.columns) == EXPOSURE_COLUMNS
    assert out["other_id"].tolist() == ["C", "B"]        # 40 s before 20 s; D never met A; self ignored


def test_exposure_of_nobody_is_empty_with_columns():
    out = exposures(contacts_of([(20, "A", "B")]), "Z", at(0), at(100))
    assert out.empty and list(out.columns) == EXPOSURE_COLUMNS


@pytest.mark.parametrize("start, end, error", [
    (datetime(2024, 3, 1, 8), at(100), NaiveTimestamp),
    (at(100), at(100), InvalidInput),
], ids=["naive-start", "empty-window"])
def test_exposure_rejects_bad_window(start, end, error):
    with pytest.raises(error):
        exposures(contacts_of([(20, "A", "B")]), "A", start, end)


window_rows = st.lists(st.tuples(st.integers(0, 60).map(lambda k: 20 * k), st.sampled_from("BCD"),
                                 st.booleans()), max_size=60)


@settings(max_examples=60, deadline=None)
@given(window_rows, st.integers(0, 1200), st.integers(1, 1200), st.sampled_from([0, 20, 60, 300]))
def test_contact_seconds_equal_twenty_per_window(rows, start_s, length_s, gap_s):
    data = [(t, "A", o) if first else (t, o, "A") for t, o, first in rows]
    out = exposures(contacts_of(data), "A", at(start_s), at(start_s + length_s), gap_s=gap_s)
    windows = {(o, t) for t, o, _ in rows if start_s < t <= start_s + length_s}
    assert out["contact_s"].sum() == 20 * len(windows)
    per_other = defaultdict(int)
    for o, _ in windows:
        per_other[o] += 1
    assert dict(zip(out["other_id"], out["contact_s"] // 20)) == per_other
    assert (out["episodes"] >= 1).all() and (out["episodes"] <= out["contact_s"] // 20).all()


# ----------------------------------------------------------------------- second degree / network

def test_second_degree_only_after_first_exposure():
    rows = [(100, "A", "B"),                 # A meets B first at window ending 100
            (60, "B", "C"), (100, "B", "C"),  # before / same window as the exposure: not onward
            (120, "B", "C"), (140, "C", "B"),
            (200, "B", "A"),                  # back to A itself: not second degree
            (300, "B", "D"),
            (400, "C", "E"),                  # C never met A: not a via
            (500, "A", "D")]
    out = second_degree(contacts_of(rows), "A", at(0), at(1000))
    got = out[["via_id", "other_id", "episodes", "contact_s", "also_first_degree"]].values.tolist()
    assert got == [["B", "C", 1, 40, False], ["B", "D", 1, 20, True]]
    assert out.loc[0, "first_contact"] == at(100) and out.loc[0, "last_contact"] == at(140)


def test_second_degree_min_contact_filters_vias():
    rows = [(20, "A", "B"), (40, "A", "C"), (60, "A", "C"), (80, "B", "D"), (80, "C", "E")]
    out = second_degree(contacts_of(rows), "A", at(0), at(1000), min_contact_s=40)
    assert out[["via_id", "other_id"]].values.tolist() == [["C", "E"]]


def test_contact_network_edges_and_nodes():
    rows = [(20, "A", "B"), (20, "B", "A"), (40, "A", "B"), (60, "C", "A"), (200, "B", "C")]
    net = contact_network(contacts_of(rows), at(0), at(100))
    assert net.edges[["person_a", "person_b", "role_a", "role_b", "windows", "episodes", "contact_s"]].values.tolist() == [
        ["A", "B", "NUR", "PAT", 2, 1, 40], ["A", "C", "NUR", "MED", 1, 1, 20]]
    assert net.nodes.values.tolist() == [["A", "NUR", 2, 60], ["B", "PAT", 1, 40], ["C", "MED", 1, 20]]


# ------------------------------------------------------------------------------ co-location

T0 = pd.Timestamp("2024-01-01 10:00", tz="UTC")


def t(s: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=s)


def presence(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["entity_id", "role", "room_id", "start", "end"])


def test_colocation_same_room_windows():
    p = presence([("n1", "nurse", "r1", t(5), t(60)),
                  ("p1", "patient", "r1", t(-3600), pd.NaT),      # still there
                  ("d1", "doctor", "r1", t(40), t(41)),           # only in window (40, 60]
                  ("x1", "hca", "r2", t(0), t(120))])             # other room
    out = colocation_contacts(p, T0, t(120))
    assert out.assign(s=(out["ts"] - T0).dt.total_seconds().astype(int))[
        ["s", "person_a", "person_b", "role_a", "role_b"]].values.tolist() == [
        [20, "n1", "p1", "NUR", "PAT"], [40, "n1", "p1", "NUR", "PAT"],
        [60, "d1", "n1", "MED", "NUR"], [60, "d1", "p1", "MED", "PAT"], [60, "n1", "p1", "NUR", "PAT"]]


def test_colocation_within_metres_needs_close_samples():
    p = presence([("n1", "nurse", "r1", t(0), t(60)), ("p1", "patient", "r1", t(0), t(60)),
                  ("d1", "doctor", "r1", t(0), t(60))])
    pos = pd.DataFrame({"entity_id": ["n1", "p1", "d1", "n1", "p1"],
                        "ts": [t(39), t(35), t(39), t(50), t(50)],
                        "x_m": [0.0, 1.0, 5.0, 0.0, 3.0], "y_m": [0.0, 0.0, 0.0, 0.0, 0.0]})
    out = colocation_contacts(p, T0, t(60), within_m=1.5, positions=pos)
    # window (20, 40]: n1-p1 1 m apart (d1 5 m away); window (40, 60]: 3 m apart; (0, 20]: no samples
    assert out[["ts", "person_a", "person_b"]].values.tolist() == [[t(40), "n1", "p1"]]


def test_colocation_output_feeds_exposures():
    p = presence([("n1", "nurse", "r1", t(0), t(60)), ("p1", "patient", "r1", t(0), t(300))])
    out = exposures(colocation_contacts(p, T0, t(300)), "p1", T0, t(300))
    assert out[["other_id", "other_role", "episodes", "contact_s"]].values.tolist() == [["n1", "NUR", 1, 60]]


@pytest.mark.parametrize("rows, kwargs, error", [
    ([("n1", "pump", "r1", t(0), t(60))], {}, UnknownRole),
    ([("n1", "nurse", "r1", t(60), t(0))], {}, InvalidInput),
    ([("n1", "nurse", "r1", pd.Timestamp("2024-01-01 10:00"), pd.Timestamp("2024-01-01 10:01"))], {}, NaiveTimestamp),
    ([("n1", "nurse", "r1", t(0), t(60))], {"within_m": 2.0}, InvalidInput),
], ids=["device-role", "end-before-start", "naive-times", "within-without-positions"])
def test_colocation_rejects_bad_input(rows, kwargs, error):
    with pytest.raises(error):
        colocation_contacts(presence(rows), T0, t(120), **kwargs)


@pytest.mark.parametrize("role, expected", [
    ("patient", "PAT"), ("nurse", "NUR"), ("hca", "NUR"), ("charge_nurse", "NUR"), ("doctor", "MED"),
    ("porter", "ADM"), ("ward_manager", "ADM"), ("MED", "MED"), ("Doctor", "MED"),
], ids=lambda v: str(v))
def test_sociopatterns_role(role, expected):
    assert sociopatterns_role(role) == expected
    assert sociopatterns_role(pd.Series([role, "patient"])).tolist() == [expected, "PAT"]


# ------------------------------------------------------------------- external: Lyon hospital

LYON_ORIGIN = pd.Timestamp("2010-12-06 13:00", tz="Europe/Paris")


@pytest.fixture(scope="module")
def lyon_path(external_dir):
    return external_dir / "sociopatterns_hospital_lyon" / "hospital_lyon_contacts.dat.gz"


@pytest.fixture(scope="module")
def lyon(lyon_path):
    return read_sociopatterns(lyon_path, LYON_ORIGIN)


@pytest.mark.external
def test_lyon_shape_people_and_roles(lyon):
    assert len(lyon) == 32_424
    people = pd.concat([lyon[["person_a", "role_a"]].set_axis(["id", "role"], axis=1),
                        lyon[["person_b", "role_b"]].set_axis(["id", "role"], axis=1)]).drop_duplicates()
    assert people["id"].is_unique                                   # every id keeps one role
    assert len(people) == 75
    assert people["role"].value_counts().to_dict() == {"PAT": 29, "NUR": 27, "MED": 11, "ADM": 8}
    assert lyon["ts"].min().tz_convert("Europe/Paris") == pd.Timestamp("2010-12-06 13:02:20", tz="Europe/Paris")
    assert lyon["ts"].max().tz_convert("Europe/Paris") == pd.Timestamp("2010-12-10 13:34:00", tz="Europe/Paris")


@pytest.mark.external
def test_lyon_rows_by_role_pair(lyon):
    lo = lyon[["role_a", "role_b"]].min(axis=1)
    hi = lyon[["role_a", "role_b"]].max(axis=1)
    pair = (lo + "-" + hi).value_counts().to_dict()
    assert pair == {"NUR-NUR": 12695, "NUR-PAT": 6845, "MED-MED": 5660, "ADM-NUR": 2596, "MED-NUR": 1769,
                    "MED-PAT": 1471, "ADM-MED": 459, "ADM-PAT": 441, "ADM-ADM": 279, "PAT-PAT": 209}


def _plain_exposure(path, person: str, lo_s: int, hi_s: int, gap_s: int):
    """Independent oracle: stdlib only, over the raw file lines."""
    seen = defaultdict(set)
    with gzip.open(path, "rt") as fh:
        for t_s, i, j, _si, _sj in csv.reader(fh, delimiter="\t"):
            t_s = int(t_s)
            if lo_s < t_s <= hi_s and person in (i, j):
                seen[j if i == person else i].add(t_s)
    result = {}
    for other, times in seen.items():
        times = sorted(times)
        episodes = 1 + sum(1 for prev, cur in zip(times, times[1:]) if cur - prev > 20 + gap_s)
        result[other] = (episodes, 20 * len(times), times[0] - 20, times[-1])
    return result


@pytest.mark.external
@pytest.mark.parametrize("person, day, gap_s", [("1157", "2010-12-07", 60), ("1295", "2010-12-08", 300)],
                         ids=["MED-1157-dec7", "NUR-1295-dec8"])
def test_lyon_exposure_matches_plain_computation(lyon, lyon_path, person, day, gap_s):
    start = pd.Timestamp(day, tz="Europe/Paris")
    end = start + pd.Timedelta(days=1)
    lo_s = int((start - LYON_ORIGIN).total_seconds())
    expected = _plain_exposure(lyon_path, person, lo_s, lo_s + 86_400, gap_s)
    out = exposures(lyon, person, start, end, gap_s=gap_s)
    assert len(expected) > 5
    got = {r.other_id: (r.episodes, r.contact_s, int((r.first_contact - LYON_ORIGIN).total_seconds()),
                        int((r.last_contact - LYON_ORIGIN).total_seconds())) for r in out.itertuples()}
    assert got == expected
    assert out["contact_s"].is_monotonic_decreasing


def test_exposure_rejects_naive_contact_times():
    naive = contacts_of([(20, "A", "B")]).assign(ts=[pd.Timestamp("2024-03-01 08:00:20")])
    with pytest.raises(NaiveTimestamp):
        exposures(naive, "A", at(0), at(100))
