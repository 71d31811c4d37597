"""Fuzz the feed parser (core.ingest.parse_json_lines + validate) line by line: whatever a reader or
an attacker sends, nothing crashes, every known-bad line is quarantined with a reason, every good line
is kept — and arbitrary junk next to good lines never costs a good line."""
from datetime import timedelta

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from core.ingest import Registry, parse_json_lines, validate
from core.models import to_ms
from tests.helpers import T0, sample_site

SITE = sample_site()
REG = Registry.from_site(SITE)
TAGS = sorted(REG.tag_ids)
ANTENNAS = sorted(REG.antennas)
X0, Y0, X1, Y1 = REG.floor_bounds["F1"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ts(k: int, style: int):
    """Line k's unique time (k ms before T0) in one of the accepted spellings."""
    t = pd.Timestamp(T0) - pd.Timedelta(milliseconds=k + 1)
    return [t.isoformat().replace("+00:00", "Z"), t.isoformat(), to_ms(t),
            t.tz_convert("Europe/London").isoformat()][style]


good_read = st.fixed_dictionaries({
    "tag": st.sampled_from(TAGS), "shape": st.sampled_from(["position", "reader", "omlox"]),
    "antenna": st.sampled_from(ANTENNAS), "rssi": st.floats(-110, -20),
    "x": st.floats(X0, X1), "y": st.floats(Y0, Y1), "style": st.integers(0, 3)})


def render_good(g: dict, k: int) -> dict:
    ts = _ts(k, g["style"])
    if g["shape"] == "reader":
        return {"ts": ts, "tag_id": g["tag"], "reader_id": g["antenna"][0], "antenna": g["antenna"][1],
                "rssi_dbm": round(g["rssi"], 1)}
    if g["shape"] == "omlox":
        return {"provider_id": g["tag"], "timestamp_generated": ts, "floor_id": "F1",
                "position": {"type": "Point", "coordinates": [g["x"], g["y"]]}}
    return {"ts": ts, "tag_id": g["tag"], "x_m": g["x"], "y_m": g["y"], "floor_id": "F1"}


# Each mutation makes a good read certainly bad, for a reason validate or the parser must name.
MUTATIONS = {
    "unknown tag": lambda r: {**r, "tag_id": "E280FFFF" + r.get("tag_id", "X")[-8:] + "ZZ", "provider_id": None},
    "ts without zone": lambda r: {**r, "ts": "2026-11-21T08:59:59", "timestamp_generated": None},
    "ts missing": lambda r: {k: v for k, v in r.items() if k not in ("ts", "timestamp_generated")},
    "clock skew": lambda r: {**r, "ts": (pd.Timestamp(T0) + timedelta(hours=1)).isoformat(), "timestamp_generated": None},
    "off the plan": lambda r: {"ts": r.get("ts") or r.get("timestamp_generated"), "tag_id": r.get("tag_id") or r.get("provider_id"),
                               "x_m": X1 + 100, "y_m": Y0, "floor_id": "F1"},
    "unknown floor": lambda r: {"ts": r.get("ts") or r.get("timestamp_generated"), "tag_id": r.get("tag_id") or r.get("provider_id"),
                                "x_m": X0, "y_m": Y0, "floor_id": "F9"},
    "positive rssi": lambda r: {"ts": r.get("ts") or r.get("timestamp_generated"), "tag_id": r.get("tag_id") or r.get("provider_id"),
                                "reader_id": ANTENNAS[0][0], "antenna": ANTENNAS[0][1], "rssi_dbm": 7.5},
    "both shapes": lambda r: {"ts": r.get("ts") or r.get("timestamp_generated"), "tag_id": r.get("tag_id") or r.get("provider_id"),
                              "reader_id": ANTENNAS[0][0], "antenna": 1, "rssi_dbm": -50, "x_m": 1.0, "y_m": 1.0, "floor_id": "F1"},
}
NOT_AN_OBJECT = ["42", '"a read"', "null", "true", "[1, 2]"]

line_plan = st.lists(st.one_of(
    st.tuples(st.just("good"), good_read),
    st.tuples(st.just("bad"), st.tuples(good_read, st.sampled_from(sorted(MUTATIONS)))),
    st.tuples(st.just("broken"), st.text(max_size=30)),          # "}" + text is never valid JSON
    st.tuples(st.just("scalar"), st.sampled_from(NOT_AN_OBJECT)),
), min_size=1, max_size=25)


def build(plan) -> tuple[list[str], set[tuple[str, int]], int]:
    """Lines to feed, the (tag, ts_ms) of every good read, and the number of bad items."""
    lines, good, bad = [], set(), 0
    for k, (kind, spec) in enumerate(plan):
        if kind == "good":
            read = render_good(spec, k)
            good.add((spec["tag"], to_ms(pd.Timestamp(T0) - pd.Timedelta(milliseconds=k + 1))))
            lines.append(orjson.dumps(read).decode())
        elif kind == "bad":
            g, how = spec
            lines.append(orjson.dumps(MUTATIONS[how](render_good(g, k))).decode())
            bad += 1
        elif kind == "broken":
            lines.append("}" + spec.replace("\n", " "))
            bad += 1
        else:
            bad += 2 if spec == "[1, 2]" else 1
            lines.append(spec)
    return lines, good, bad


def run(lines: list[str]):
    raw, parse_bad = parse_json_lines(lines, source="fuzz", received_at=T0)
    res = validate(raw, REG, T0, source="fuzz")
    return res.accepted, pd.concat([parse_bad, res.quarantine], ignore_index=True)


@FUZZ
@given(line_plan)
def test_every_bad_line_quarantined_every_good_line_kept(plan):
    lines, good, n_bad = build(plan)
    accepted, quarantined = run(lines)
    kept = set(zip(accepted["tag_id"], accepted["ts"].astype("datetime64[ms, UTC]").astype("int64")))
    assert kept == good                                        # every good line kept, nothing bad let through
    assert len(quarantined) == n_bad                           # every bad item quarantined, exactly once
    assert quarantined["reason"].map(lambda r: isinstance(r, str) and r != "").all()
    assert quarantined["raw"].notna().all() and (quarantined["source"] == "fuzz").all()


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=60)), max_size=15), st.lists(good_read, min_size=1, max_size=5))
def test_arbitrary_junk_never_crashes_or_costs_a_good_line(junk, goods):
    good_lines = [orjson.dumps(render_good(g, 1000 + i)).decode() for i, g in enumerate(goods)]
    want = {(g["tag"], to_ms(pd.Timestamp(T0) - pd.Timedelta(milliseconds=1001 + i))) for i, g in enumerate(goods)}
    accepted, quarantined = run(junk + good_lines)
    kept = set(zip(accepted["tag_id"], accepted["ts"].astype("datetime64[ms, UTC]").astype("int64")))
    assert want <= kept
    assert quarantined["reason"].map(lambda r: isinstance(r, str) and r != "").all()
