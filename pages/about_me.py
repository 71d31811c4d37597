"""What Wardsight knows about me: the data held about the signed-in person, how long it is kept, and
who has looked at it (from the audit log)."""
import pandas as pd
import streamlit as st

from core.security.privacy import hours_text, what_we_know_about
from ui import auth, render, state

me = auth.require_page("about_me")
cfg = state.settings()
site = state.site()

st.title("What Wardsight knows about me")
staff = site.entities.set_index("entity_id")
badge = f"{me.staff_id} · {staff.at[me.staff_id, 'name']}" if me.staff_id in staff.index else None
st.markdown(f"**{me.display_name}** · {me.role.replace('_', ' ')} · "
            + (f"badge {badge}" if badge else "no staff badge linked to this account"))

summary = what_we_know_about(state.repo().engine, me.staff_id, state.now(), username=me.username,
                             raw_read_days=cfg.raw_read_retention_days, staff_history_hours=cfg.staff_history_hours)
render.updated(state.now())
for line in summary.policy:
    st.markdown(f"- {line}")
if not badge:
    st.info("Your account is not linked to a staff badge, so Wardsight holds no location data about you.")


def when(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col, utc=True).dt.tz_convert(site.tz).dt.strftime("%Y-%m-%d %H:%M").fillna("—")


st.subheader("Data held")
h = summary.holdings
st.dataframe(pd.DataFrame({"what": h["item"], "records": h["rows"], "oldest": when(h["oldest"]),
                           "newest": when(h["newest"]), "kept for": h["retention"]}), hide_index=True, width="stretch")
st.caption(f"Retention horizon: raw tag reads {cfg.raw_read_retention_days:g} days; individual movement "
           f"{hours_text(cfg.staff_history_hours)}. The retention job runs every hour.")

st.subheader("Who looked at my data")
v = summary.viewers
if v.empty:
    st.caption("Nobody has opened your location history or changed your account.")
else:
    st.dataframe(pd.DataFrame({"when": when(v["ts"]), "who": v["actor"], "role": v["role"].str.replace("_", " "),
                               "what": v["action"].str.replace("_", " "), "why": v["reason"].fillna("")}),
                 hide_index=True, width="stretch")

runner = state.feed()
hooks = getattr(getattr(runner, "pipeline", None), "security", None)
if hooks is not None and hooks.withheld_totals:
    st.subheader("Not recorded")
    st.caption("Reads the feed received but did not store, for all staff and patients, since this server started: "
               + ", ".join(f"{n:,} ({why})" for why, n in hooks.withheld_totals.items()) + ".")
