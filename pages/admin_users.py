"""Users (admin): who has an account, with which role and badge; create, disable / enable, unlock and
reset a second factor. Every change is written to the audit log by core.security.auth."""
import pandas as pd
import streamlit as st

from core.errors import InvalidInput
from core.security.roles import STAFF_ROLES
from ui import auth, render, state

me = auth.require_page("admin_users")
svc = auth.service()
site = state.site()
staff = site.entities[site.entities["kind"] == "staff"].set_index("entity_id")

st.title("Users")
if st.session_state.get("admin_flash"):
    st.success(st.session_state.pop("admin_flash"))


def done(message: str) -> None:
    """Show `message` above the refreshed list (every action is already in the audit log)."""
    st.session_state["admin_flash"] = message
    st.rerun()


accounts = svc.list_users(state.now())
render.updated(state.now(), f" · {len(accounts)} accounts · {int(accounts['locked'].sum())} locked · "
                            f"{int((~accounts['active']).sum())} disabled")
st.dataframe(pd.DataFrame({
    "username": accounts["username"], "name": accounts["display_name"],
    "role": accounts["role"].str.replace("_", " "),
    "badge": accounts["staff_id"].map(lambda s: f"{s} · {staff.at[s, 'name']}" if s in staff.index else "—"),
    "status": accounts["active"].map({True: "active", False: "disabled"}).where(~accounts["locked"], "locked"),
    "second factor": accounts["enrolled"].map({True: "enrolled", False: "enrols at next sign-in"}),
    "created": accounts["created"].dt.tz_convert(site.tz).dt.strftime("%Y-%m-%d %H:%M")}),
    hide_index=True, width="stretch")

st.subheader("Manage an account")
pick, c1, c2, c3 = st.columns([3, 1, 1, 1.4], vertical_alignment="bottom")
name = pick.selectbox("Account", accounts["username"].tolist(), key="manage_user")
row = accounts.set_index("username").loc[name]
mine = name == me.username
if row["active"] and c1.button("Disable", disabled=mine, help="Ends the person's open sessions", width="stretch"):
    svc.set_active(name, False, state.now(), by=me.username, by_role=me.role)
    done(f"{name} is disabled and signed out everywhere.")
if not row["active"] and c1.button("Enable", width="stretch"):
    svc.set_active(name, True, state.now(), by=me.username, by_role=me.role)
    done(f"{name} is enabled again.")
if c2.button("Unlock", disabled=not row["locked"], help="Clears a lockout after repeated failed sign-ins",
                              width="stretch"):
    svc.unlock(name, state.now(), by=me.username, by_role=me.role)
    done(f"{name} is unlocked.")
if c3.button("Reset second factor", disabled=mine, width="stretch",
                                  help="Lost phone: the person scans a new QR code at next sign-in"):
    svc.reset_second_factor(name, state.now(), by=me.username, by_role=me.role)
    done(f"{name} will enrol a new authenticator at the next sign-in; open sessions were ended.")
if mine:
    st.caption("You cannot disable your own account or reset your own second factor here.")

st.subheader("Create an account")
with st.form("create_user", clear_on_submit=True):
    a, b = st.columns(2)
    username = a.text_input("Username", placeholder="e.g. j.smith")
    display = b.text_input("Full name")
    role = a.selectbox("Role", [r.value for r in STAFF_ROLES], format_func=lambda r: r.replace("_", " "))
    badge = b.selectbox("Staff badge (optional)", [""] + staff.index.tolist(),
                        format_func=lambda s: "— none —" if not s else f"{s} · {staff.at[s, 'name']} ({staff.at[s, 'subtype']})")
    password = a.text_input("Initial password", type="password", help="At least 8 characters; tell the person in person")
    if st.form_submit_button("Create account", type="primary"):
        try:
            svc.create_user(username, password, role, display or username, now=state.now(), staff_id=badge or None,
                            created_by=me.username, created_by_role=me.role)
        except InvalidInput as exc:
            st.error(str(exc))
        else:
            done(f"Created {username}. At the first sign-in they scan a QR code into an authenticator app.")
