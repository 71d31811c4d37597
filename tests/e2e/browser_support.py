"""Start the real app (`streamlit run app.py`) on a free port with a temp database and drive it in
Debian's headless Chromium through playwright. Skips with a clear reason when either is missing."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def need_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -r requirements.txt)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(tmp_path: Path, env: dict[str, str] | None = None):
    """Yield the base URL of a freshly started app; stop it afterwards."""
    port = free_port()
    full_env = {**os.environ, "WARDSIGHT_DB_URL": f"sqlite:///{tmp_path / 'e2e.db'}", "WARDSIGHT_DEMO": "1",
                **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stdout.read().decode(errors="replace")[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def browser_page(width: int = 1920, height: int = 1080):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def sign_in(page, url: str, username: str) -> None:
    """Sign in as a demo account: password, then the TOTP code its authenticator would show."""
    from core.security import totp
    from core.security.auth import DEMO_ACCOUNTS, DEMO_PASSWORD
    secret = next(s for u, _, _, s in DEMO_ACCOUNTS if u == username)
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    code_box = page.get_by_label("6-digit code from your authenticator")
    code_box.wait_for(timeout=20_000)
    code_box.fill(totp.code_at(secret, datetime.now(timezone.utc)))
    page.get_by_role("button", name="Sign in").click()
