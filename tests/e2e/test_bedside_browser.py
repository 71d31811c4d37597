"""End to end: the real app in headless Chromium. The demo doctor signs in (password + TOTP) and
opens "At the bedside"; this test process then runs the pipeline against the same database and
walks the doctor's badge to an assigned patient's bed. The tablet must switch to that patient within
a few seconds, and back to "My patients" after the doctor walks away.

The badge is moved with the demo hold (`core.bedside_service.arrive`): its reads go through
validate → locate → presence → bedside like any feed read, and it works at any hour (the demo
doctor's own shift pattern would make his real badge silent at night)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SWITCH_S = 6.0     # issue 4 asks for 3 s after arrival; the margin covers a loaded CI machine

pytestmark = pytest.mark.e2e


def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (Debian package chromium): browser test skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright): browser test skipped")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    sync_playwright = _playwright()
    db = tmp_path_factory.mktemp("e2e") / "wardsight.db"
    port = _free_port()
    env = {**os.environ, "WARDSIGHT_DB_URL": f"sqlite:///{db}", "WARDSIGHT_FEED": "none", "WARDSIGHT_DEMO": "1"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("streamlit did not start")
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield url, f"sqlite:///{db}", browser
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def sign_in(page, url: str, username: str) -> None:
    from core.security import totp
    from core.security.auth import DEMO_ACCOUNTS, DEMO_PASSWORD
    secret = {u: s for u, _, _, s in DEMO_ACCOUNTS}[username]
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    code = page.get_by_role("textbox", name="6-digit code from your authenticator")
    code.wait_for(timeout=20_000)
    code.fill(totp.code_at(secret, datetime.now(timezone.utc)))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for(timeout=20_000)


def open_page(page, title: str) -> None:
    """Navigate inside the signed-in session (a new URL would start a new, signed-out session); on a
    narrow screen the sidebar is collapsed and has to be opened first."""
    expand = page.get_by_test_id("stExpandSidebarButton")
    narrow = expand.is_visible()
    if narrow:
        expand.click()
    page.get_by_role("link", name=title).click()
    if narrow:                                       # give the tablet its full width back
        page.get_by_test_id("stSidebarCollapseButton").locator("button").click()


class Feed:
    """A pipeline in this process writing the app's database, ticking once a second."""

    def __init__(self, db_url: str):
        from core.config import Settings
        from core.services import build_pipeline
        from core.site import load_site
        from core.storage.repository import Repository
        settings = Settings.from_env({"WARDSIGHT_DB_URL": db_url, "WARDSIGHT_DEMO": "1"})
        self.site, self.repo = load_site(settings.sample_dir), Repository.from_url(db_url)
        self.pipe = build_pipeline(self.site, self.repo, settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import pandas as pd
        while not self._stop.wait(1.0):
            self.pipe.process(pd.DataFrame(), datetime.now(timezone.utc), source="demo-badge")

    def start(self) -> "Feed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_bedside_tablet_follows_the_doctor_to_the_bed_and_back(app):
    from core import bedside_service as bs
    from core import care_team as ct
    from ui.auth import DEMO_STAFF
    url, db_url, browser = app
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    sign_in(page, url, "doctor")
    open_page(page, "At the bedside")
    page.get_by_role("heading", name="My patients").wait_for(timeout=30_000)

    feed = Feed(db_url)
    now = datetime.now(timezone.utc)
    ct.ensure_seeded(feed.repo, feed.site, now, demo_staff=tuple(DEMO_STAFF.values()))
    patient = ct.my_patients(feed.repo, feed.site, DEMO_STAFF["doctor"], now).iloc[0]
    here = bs.arrive(feed.pipe, DEMO_STAFF["doctor"], patient.bed_id, now)
    assert here is not None and here.patient_id == patient.patient_id
    arrived = time.monotonic()
    feed.start()                                          # the badge stays at the bed, read every second
    try:
        page.get_by_role("heading", name=patient["name"]).wait_for(timeout=SWITCH_S * 1000)
        switched_s = time.monotonic() - arrived
        assert switched_s <= SWITCH_S
        assert page.get_by_text(f"MRN").first.is_visible()
        bs.service_of(feed.pipe).release_badge(DEMO_STAFF["doctor"])          # walks away
        left = time.monotonic()
        page.get_by_role("heading", name="My patients").wait_for(timeout=(8 + SWITCH_S + 2) * 1000)
        # not at once: the exit hysteresis (8 s after the last at-bed read) holds the patient on screen;
        # measured from the release, which on a loaded machine can lag the last read by seconds
        assert time.monotonic() - left >= 2
    finally:
        feed.stop()
    print(f"switched to the patient {switched_s:.1f} s after arrival")
