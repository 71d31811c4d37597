"""Shared rendering for the alarm pages (inbox, ward screen, drug storage, vitals, waste).

Priority is always shown as colour + icon + text (IEC 60601-1-8 red / yellow / cyan; never colour
alone), and every alarm says where it is, what it concerns, how far it has escalated and who the
nearest responder is. The kiosk variant (ward screen) never shows names, MRNs or message text:
only beds, initials, alarm kinds and places.
"""
from __future__ import annotations

import html
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.alarms import service
from core.sample_clinical import Clinical, load_clinical
from core.snapshot import age_text
from ui import state

# IEC 60601-1-8 colours (standards §4.1 [R]): high red, medium yellow, low cyan - each with its own
# icon and word so the priority reads without colour.
PRIORITY = {
    "high": ("#B00020", "#FFFFFF", "!!!", "HIGH"),
    "medium": ("#F2C200", "#1A1A1A", "!!", "MEDIUM"),
    "low": ("#0B7A8A", "#FFFFFF", "!", "LOW"),
}
# (Material icon for Markdown, label, short code for HTML chips: wall screens may lack emoji fonts)
FAMILY = {
    "vitals": ("monitor_heart", "Vital signs", "VITALS"), "storage": ("kitchen", "Drug storage", "DRUGS"),
    "waste": ("delete", "Waste", "WASTE"), "location": ("location_on", "Location", "LOC"),
    "tag": ("battery_alert", "Tag", "TAG"), "help": ("front_hand", "Help request", "HELP"),
    "security": ("shield", "Security", "SEC"),
}
KIND_LABEL = {
    "vitals.news2": "NEWS2 raised", "vitals.red_score": "NEWS2 red score", "vitals.glucose": "Blood glucose",
    "vitals.obs_overdue": "Observations overdue", "vitals.sensor_silent": "Monitor not reading",
    "storage.excursion": "Storage temperature / humidity", "storage.sensor_silent": "Storage logger silent",
    "storage.drug_misplaced": "Drug in unsuitable place", "waste.wrong_bin": "Waste in wrong bin",
    "waste.wrong_place": "Waste outside disposal area", "waste.overdue": "Waste overdue / bin full",
    "location.geofence": "Patient left ward", "location.duress": "DURESS", "tag.low_battery": "Tag battery low",
    "tag.silent": "Tag silent", "help.request": "Help requested", "security.cloned_tag": "Cloned tag",
}
STATE_TEXT = {"active": "NEW · not acked", "acknowledged": "acknowledged", "cleared_unack": "cleared · ack it"}
RISK_STYLE = {"high": ("#B00020", "#FFFFFF"), "medium": ("#F2C200", "#1A1A1A"), "low-medium": ("#F6A04D", "#1A1A1A"),
              "low": ("#2E7D32", "#FFFFFF"), "": ("#9E9E9E", "#FFFFFF")}


@st.cache_resource
def clinical() -> Clinical:
    return load_clinical(state.settings().sample_dir)


def family(kind: str) -> str:
    return kind.split(".")[0]


def kind_text(kind: str, *, icon: bool = True) -> str:
    """The alarm kind in words; with a Material icon where Markdown renders it."""
    label = KIND_LABEL.get(kind, kind)
    mat = FAMILY.get(family(kind), ("notifications",))[0]
    return f":material/{mat}: {label}" if icon else label


def chip_html(priority: str, kind: str, *, size_px: int = 14) -> str:
    """A compact priority + kind chip for HTML tiles (bed board): '!! NEWS2 raised'."""
    bg, fg, mark, _word = PRIORITY.get(priority, ("#555", "#fff", "?", priority))
    return (f'<span style="background:{bg};color:{fg};padding:1px 5px;border-radius:5px;font-weight:700;'
            f'font-size:{size_px}px;white-space:nowrap;margin-right:3px">{mark} {html.escape(KIND_LABEL.get(kind, kind))}</span>')


def badge_html(priority: str, *, size_px: int = 14) -> str:
    bg, fg, icon, word = PRIORITY.get(priority, ("#555", "#fff", "🔔", priority.upper()))
    return (f'<span style="background:{bg};color:{fg};padding:2px 8px;border-radius:6px;font-weight:700;'
            f'font-size:{size_px}px;white-space:nowrap">{icon} {word}</span>')


def risk_html(total, risk: str, *, size_px: int = 14) -> str:
    bg, fg = RISK_STYLE.get(risk or "", RISK_STYLE[""])
    text = "no score" if pd.isna(total) else f"NEWS2 {int(total)} · {risk}"
    return (f'<span style="background:{bg};color:{fg};padding:1px 6px;border-radius:5px;font-weight:600;'
            f'font-size:{size_px}px;white-space:nowrap">{html.escape(text)}</span>')


def staff_name(staff_id: str | None, missing: str = "nobody on duty") -> str:
    if not staff_id or pd.isna(staff_id):
        return missing
    ent = state.site().entities.set_index("entity_id")
    if staff_id not in ent.index:
        return str(staff_id)
    r = ent.loc[staff_id]
    return f"{r['name']} ({str(r['subtype']).replace('_', ' ')})"


def patient_label(patient_id: str | None, *, identity: bool) -> str:
    """Full name with permission, else initials (never the MRN)."""
    if not patient_id or pd.isna(patient_id):
        return ""
    p = state.site().patients.set_index("patient_id")
    if patient_id not in p.index:
        return ""
    r = p.loc[patient_id]
    return f"{r['given']} {r['family']}" if identity else str(r["short_name"])


def place_text(a: pd.Series) -> str:
    site = state.site()
    rooms = site.rooms.set_index("room_id")["name"]
    if a.get("bed_id") and not pd.isna(a.get("bed_id")):
        return f"bed {a['bed_id']}"
    if a.get("location_id") and not pd.isna(a.get("location_id")):
        units = clinical().storage_units.set_index("location_id")["name"]
        return str(units.get(a["location_id"], a["location_id"]))
    room = a.get("room_id")
    if room and not pd.isna(room):
        return f"{rooms.get(room, room)} ({room})"
    return a.get("ward_id") or "—"


def drug_names(ids) -> str:
    names = clinical().drugs.set_index("drug_id")["name"]
    return ", ".join(str(names.get(d, d)) for d in (ids or ()))


def escalation_text(a: pd.Series) -> str:
    role = str(a.get("escalated_to_role") or "").replace("_", " ")
    return f"level {int(a.get('escalation_level') or 0)} → {role}"


def age(a_ts: datetime, now: datetime) -> str:
    return age_text((now - a_ts).total_seconds()).replace(" ago", "")


def extras(a: pd.Series) -> list[str]:
    """Storage: affected drugs + suggested place; waste: who last handled it; help: the role asked."""
    d = a.get("details") or {}
    out = []
    if a["kind"].startswith("storage.") and a.get("drug_ids"):
        out.append(f"Affected drugs: {drug_names(a['drug_ids'])}")
    if d.get("suggested_location_id"):
        units = clinical().storage_units.set_index("location_id")["name"]
        out.append(f"Move to: {units.get(d['suggested_location_id'], d['suggested_location_id'])}")
    elif a["kind"].startswith("storage.") and "suggested_location_id" in d:
        out.append("No suitable location reporting in range right now")
    if a["kind"].startswith("waste."):
        out.append(f"Last handled by: {staff_name(d.get('last_handler')) if d.get('last_handler') else 'unknown (no trail)'}")
    if a["kind"] == "help.request" and d.get("requested_role"):
        out.append(f"Asked for: {d['requested_role'].replace('_', ' ')}")
    return out


def css_big(base_px: int = 22, *, kiosk: bool = False) -> None:
    """Wall-display type: readable from 3 m on a 1920x1080 screen; a kiosk also hides the sidebar
    and toolbar (nothing to click on a wall)."""
    hide = """[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"]
              {display: none !important;}""" if kiosk else ""
    st.markdown(f"""<style>{hide}
      .block-container {{padding-top: 0.6rem; padding-bottom: 0.4rem; max-width: 100%;}}
      .ws-big {{font-size: {base_px}px; line-height: 1.25;}}
      .ws-bed {{border: 2px solid #9aa; border-radius: 10px; padding: 6px 8px; margin: 3px; min-height: 84px;}}
      .ws-bed .b {{font-size: {base_px - 4}px; color: #345;}}
      .ws-bed .i {{font-size: {base_px + 6}px; font-weight: 700;}}
      .ws-row {{font-size: {base_px}px; padding: 6px 4px; border-bottom: 1px solid #ddd;}}
      h1 {{font-size: {base_px + 16}px !important;}}
    </style>""", unsafe_allow_html=True)


# ---------------------------------------------------------------- inbox rendering
def render_alarm(a: pd.Series, now: datetime, *, user, can_act: bool, identity: bool, key_prefix: str = "a") -> None:
    """One alarm as a bordered row: badge, what and where, escalation and responder, actions."""
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1.2, 4.4, 2.5, 1.5], vertical_alignment="center")
        state_txt = STATE_TEXT.get(a["state"], a["state"])
        c1.markdown(badge_html(a["priority"]) + f'<br><small style="white-space:nowrap"><b>{html.escape(state_txt)}</b></small>',
                    unsafe_allow_html=True)
        who = patient_label(a.get("patient_id"), identity=identity)
        head = f"**{kind_text(a['kind'])}** · {place_text(a)}" + (f" · {who}" if who else "")
        c2.markdown(head)
        c2.caption(f"{a['message']}")
        for line in extras(a):
            c2.markdown(f"<small>{html.escape(line)}</small>", unsafe_allow_html=True)
        c3.markdown(f"<small>raised {age(a['raised_at'], now)} ago · {escalation_text(a)}<br>"
                    f"nearest: <b>{html.escape(staff_name(a.get('nearest_responder')))}</b>"
                    + (f"<br>ack by {html.escape(str(a['acknowledged_by']))}" if _present(a.get("acknowledged_by")) else "")
                    + "</small>", unsafe_allow_html=True)
        _actions(c4, a, now, user=user, can_act=can_act, key_prefix=key_prefix)


def _actions(col, a: pd.Series, now: datetime, *, user, can_act: bool, key_prefix: str) -> None:
    """Buttons act in on_click callbacks: they run before the next (fragment) rerun draws the list,
    so the list always shows the state after the action."""
    need = service.ack_permission(a["kind"]) or "signed-in staff"
    why = None if can_act else f"Needs permission {need}"
    aid, repo, site = a["alarm_id"], state.repo(), state.site()
    name, role = user.username, user.role
    buttons = []
    if a["kind"] == "help.request" and a["state"] == "active":
        buttons = [("Accept", "acc", "primary", "accepted",
                    lambda: service.accept_help(repo, aid, user=name, role=role, now=state.now())),
                   ("Can't come", "dec", "secondary", "passed on",
                    lambda: service.decline_help(repo, site, aid, user=name, role=role, now=state.now()))]
    else:
        if a["state"] in ("active", "cleared_unack"):
            buttons.append(("Ack", "ack", "primary", "acknowledged",
                            lambda: service.acknowledge(repo, aid, user=name, role=role, now=state.now())))
        buttons.append(("Resolve", "res", "secondary", "resolved",
                        lambda: service.resolve(repo, aid, user=name, role=role, now=state.now())))
    icons = {"ack": ":material/check:", "res": ":material/done_all:", "acc": ":material/directions_run:",
             "dec": ":material/block:"}
    for label, tag, kind, what, fn in buttons:
        col.button(label, key=f"{key_prefix}-{tag}-{aid}", disabled=not can_act, help=why or f"{what} (audited)",
                   type=kind, on_click=_do, args=(fn, what), width="stretch", icon=icons[tag])


def _do(fn, what: str) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - refused / stale alarm: say so, keep the page
        st.session_state["alarm_notice"] = ("error", f"Not {what}: {exc}")
    else:
        st.session_state["alarm_notice"] = ("success", f"Alarm {what}.")


def notice() -> None:
    n = st.session_state.pop("alarm_notice", None)
    if n:
        (st.error if n[0] == "error" else st.success)(n[1])


def counts_line(df: pd.DataFrame) -> str:
    parts = []
    for p in ("high", "medium", "low"):
        k = int((df["priority"] == p).sum()) if len(df) else 0
        parts.append(badge_html(p, size_px=13) + f" <b>{k}</b>")
    unack = int(df["state"].isin(["active", "cleared_unack"]).sum()) if len(df) else 0
    return " &nbsp; ".join(parts) + f" &nbsp; · &nbsp; <b>{unack}</b> unacknowledged"


# ---------------------------------------------------------------- charts
def rate_chart(rate: pd.DataFrame, top: int = 15) -> go.Figure:
    r = rate.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=r["per_day"], y=r["bed_id"], orientation="h", marker_color="#0072B2",
                           text=r["per_day"], textposition="outside", hovertext=r["top_kinds"], hoverinfo="text+x"))
    fig.update_layout(height=max(220, 24 * len(r) + 60), margin=dict(l=4, r=30, t=10, b=30),
                      xaxis_title="alarms per bed per day", yaxis_title=None)
    return fig


def news2_trend(v: pd.DataFrame, tz) -> go.Figure:
    """NEWS2 total over time with the RCP bands shaded (0-4 low, 5-6 medium, >=7 high; §1.2 [V])."""
    fig = go.Figure()
    for y0, y1, colour, name in ((0, 4.5, "rgba(46,125,50,0.10)", "low 0-4"), (4.5, 6.5, "rgba(242,194,0,0.18)", "medium 5-6"),
                                 (6.5, 20, "rgba(176,0,32,0.12)", "high ≥7")):
        fig.add_hrect(y0=y0, y1=y1, fillcolor=colour, line_width=0, annotation_text=name,
                      annotation_position="top left", annotation_font_size=11)
    s = v[v["status"] == "scored"]
    if len(s):
        fig.add_trace(go.Scatter(x=s["ts"].dt.tz_convert(tz), y=s["news2_total"], mode="lines+markers",
                                 name="NEWS2", line=dict(color="#003f7f", width=2, shape="hv"), marker=dict(size=5)))
    bad = v[v["status"] == "impossible"]
    if len(bad):
        fig.add_trace(go.Scatter(x=bad["ts"].dt.tz_convert(tz), y=np.zeros(len(bad)), mode="markers", name="rejected reading",
                                 marker=dict(symbol="x", size=10, color="#B00020"), hovertext=bad["reason"], hoverinfo="text"))
    top = max(10, float(s["news2_total"].max()) + 1) if len(s) else 10
    fig.update_layout(height=320, margin=dict(l=4, r=4, t=10, b=30), yaxis=dict(range=[-0.5, top], title="NEWS2"),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _present(value) -> bool:
    """A real value (None, NaN and empty strings from the store are 'not set')."""
    return value is not None and not (isinstance(value, float) and value != value) and str(value).strip() != ""
