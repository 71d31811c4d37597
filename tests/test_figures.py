"""ui.figures.add_markers: the hover of every marker carries its name, role, room, bed, since and
last seen (issue 2), whatever field of the trace each part travels in."""
import json
import re

import pandas as pd
import plotly.graph_objects as go
import pytest

from ui.figures import add_markers

NOW = pd.Timestamp("2026-11-21T10:00:00Z")


def _hover_texts(fig_json: dict) -> dict[str, str]:
    """What plotly.js shows: each point's hovertemplate with %{field} replaced by the point's value."""
    out = {}
    for tr in fig_json["data"]:
        tpl = tr.get("hovertemplate")
        if not tpl:
            continue
        for i in range(len(tr["text"])):
            text = re.sub(r"%\{(\w+)\}", lambda m: str(tr[m.group(1)][i]), tpl)
            out[tr["text"][i]] = text.replace("<extra></extra>", "")
    return out


@pytest.mark.parametrize("bed, stale, age_s, expect", [
    ("B1-01", False, 12.0, "Bay 1 · bed B1-01<br>here since 09:30:00<br>last seen 12 s ago"),
    (None, False, 12.0, "Bay 1<br>here since 09:30:00<br>last seen 12 s ago"),
    (None, True, 40.0, "Bay 1<br>here since 09:30:00<br>last seen 40 s ago (STALE)"),
], ids=["with-bed", "no-bed", "stale"])
def test_hover_has_every_field(bed, stale, age_s, expect):
    m = pd.DataFrame({"tag_id": ["T1", "T2"], "label": ["Ann Lee", "Pump 7"],
                      "category": ["staff:nurse", "device:infusion_pump"], "room_name": ["Bay 1", None],
                      "bed_id": [bed, None], "x_m": [1.04, 2.0], "y_m": [3.0, 4.0],
                      "since": [NOW - pd.Timedelta("30min")] * 2, "age_s": [age_s, 3.0],
                      "state": ["stale" if stale else "present", "present"]})
    fig = add_markers(go.Figure(), m, "UTC")
    hover = _hover_texts(json.loads(fig.to_json()))
    assert hover["Ann Lee"] == f"<b>Ann Lee</b><br>Nurse<br>{expect}"
    assert hover["Pump 7"].startswith("<b>Pump 7</b><br>Infusion pump<br>—<br>here since 09:30:00<br>last seen ")
