"""Ward screen: the wall display (1920x1080, readable from 3 m) for one ward - floor map, bed board
and the ward's open alarms. Kiosk page (no sign-in): beds, initials and alarm kinds only, never
full names, MRNs, diagnoses or alarm message text. The ward is remembered in the URL (?ward=WA)."""
import html
from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from core.alarms import service
from ui import alarms_ui as ui
from ui import auth, render, state
from ui.figures import STYLE, add_markers, base_figure

user = auth.require_page("ward_screen")
site, cfg = state.site(), state.settings()
wards = site.wards.set_index("ward_id")
ui.css_big(kiosk=user is None)

param = st.query_params.get("ward")
if param in wards.index and param != st.session_state.get("_ws_param"):
    st.session_state["ws_ward"] = param            # the URL was opened or edited: it wins
head, pick = st.columns([5, 1], vertical_alignment="bottom")
ward = pick.selectbox("Ward", list(wards.index), format_func=lambda w: wards.at[w, "name"], key="ws_ward")
st.query_params["ward"] = st.session_state["_ws_param"] = ward
head.title(wards.at[ward, "name"])
floor_id = wards.at[ward, "floor_id"]


@st.cache_resource(max_entries=8)
def _base(floor: str, ward_id: str) -> go.Figure:
    fig = base_figure(site.floors[floor], site.rooms.set_index("room_id")["room_type"])
    r = site.rooms[site.rooms["ward_id"] == ward_id]
    g = site.floors[floor].rooms.set_index("id").loc[r["room_id"], "geometry"]
    x0, x1 = min(p.bounds[0] for p in g), max(p.bounds[2] for p in g)
    fig.update_xaxes(range=[x0 - 0.5, x1 + 0.5])
    fig.update_layout(showlegend=True, legend=dict(font=dict(size=15)))
    return fig


def _kiosk_markers(ward_id: str):
    """Patients as initials at their bed, staff by role only, devices by type; this ward only."""
    snap = state.floor_snapshot(floor_id, show_identity=False)
    m = snap.on_map()
    m = m[m["floor_id"].eq(floor_id) & (m["ward_id"].eq(ward_id) | m["room_id"].fillna("").str.startswith(ward_id + "-"))]
    role = m["category"].map(lambda c: STYLE.get(c, ("", "", c))[2])
    label = m["short_name"].where(m["kind"] == "patient", role)
    return m.assign(label=label, name=label)


def _alarm_trace(fig: go.Figure, alarms) -> None:
    a = alarms[alarms["x_m"].notna()]
    if a.empty:
        return
    symbols = {"high": "diamond-wide", "medium": "triangle-up", "low": "circle"}
    for p, grp in a.groupby("priority"):
        colour, _, icon, word = ui.PRIORITY[p]
        fig.add_trace(go.Scatter(
            x=grp["x_m"], y=grp["y_m"], mode="markers", name=f"{icon} {word} alarm",
            marker=dict(size=22, symbol=symbols.get(p, "circle"), color=colour, line=dict(width=2, color="black"),
                        opacity=0.85),
            hovertext=[f"{word}: {ui.KIND_LABEL.get(k, k)} · {ui.place_text(r)}" for k, (_, r) in zip(grp["kind"], grp.iterrows())],
            hoverinfo="text"))


def _bed_board(ward_id: str, alarms, latest) -> str:
    beds = site.beds[site.beds["ward_id"] == ward_id].sort_values("bed_id")
    pts = ui.clinical().patients.set_index("bed_id")["patient_id"]
    initials = site.patients.set_index("patient_id")["short_name"]
    news = latest.set_index("patient_id") if len(latest) else None
    cells = []
    for bed in beds["bed_id"]:
        pid = pts.get(bed)
        who = html.escape(str(initials.get(pid, ""))) if pid else "—"
        score = ""
        if pid and news is not None and pid in news.index:
            score = ui.risk_html(news.at[pid, "news2_total"], news.at[pid, "news2_risk"], size_px=16)
        mine = alarms[(alarms["bed_id"] == bed) | (alarms["patient_id"].eq(pid) if pid else False)]
        icons = "".join(ui.chip_html(p, k, size_px=13) for p, k in zip(mine["priority"], mine["kind"]))
        border = ui.PRIORITY[mine["priority"].iloc[0]][0] if len(mine) else "#9aa"
        short = bed.split("-", 1)[1]
        cells.append(f'<div class="ws-bed" style="border-color:{border}"><div class="b">{html.escape(short)}</div>'
                     f'<div class="i">{who}</div><div>{score}</div><div>{icons}</div></div>')
    return ('<div style="display:grid;grid-template-columns:repeat(auto-fill, minmax(9.5em, 1fr));gap:2px">' + "".join(cells) + "</div>")


def _inbox_rows(alarms, now, limit: int = 9) -> str:
    if alarms.empty:
        return '<div class="ws-row">No open alarms</div>'
    initials = site.patients.set_index("patient_id")["short_name"]
    rows = []
    for _, a in alarms.head(limit).iterrows():
        who = initials.get(a["patient_id"], "") if a.get("patient_id") else ""
        state_txt = "ACK" if a["state"] == "acknowledged" else "NEW"
        rows.append(f'<div class="ws-row">{ui.badge_html(a["priority"], size_px=20)} <b>{html.escape(ui.kind_text(a["kind"], icon=False))}</b>'
                    f' · {html.escape(ui.place_text(a))}{" · " + html.escape(str(who)) if who else ""}'
                    f'<br><small>{state_txt} · {ui.age(a["raised_at"], now)} · {html.escape(ui.escalation_text(a))}</small></div>')
    more = len(alarms) - limit
    return "".join(rows) + (f'<div class="ws-row">+ {more} more</div>' if more > 0 else "")


@st.fragment(run_every=cfg.refresh_s)
def screen() -> None:
    now = state.now()
    alarms = service.inbox(state.repo(), ward)
    latest = service.latest_vitals(state.repo(), now - timedelta(hours=13))
    left, right = st.columns([1.45, 1])
    with left:
        fig = add_markers(go.Figure(_base(floor_id, ward)), _kiosk_markers(ward), site.tz)
        _alarm_trace(fig, alarms)
        fig.update_layout(height=430, legend=dict(orientation="h", y=-0.02, font=dict(size=14)))
        st.plotly_chart(fig, width="stretch", config={"displayModeBar": False, "staticPlot": False}, key="ws_map")
    with right:
        st.markdown(f'<div class="ws-big">{ui.counts_line(alarms)}</div>', unsafe_allow_html=True)
        st.markdown(_inbox_rows(alarms, now), unsafe_allow_html=True)
    st.markdown(_bed_board(ward, alarms, latest), unsafe_allow_html=True)
    render.updated(now, " · beds show initials only")


screen()
