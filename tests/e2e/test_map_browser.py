"""The newcomer's first minute, in a real browser: the app starts on its embedded default (SQLite +
built-in simulator), a nurse signs in, and within 10 s sees a floor map with staff, patients and
devices that moves and says when it was updated."""
import json
import re
import time

import pytest

from tests.e2e.browser_support import browser_page, need_browser, running_app, sign_in

pytestmark = pytest.mark.e2e


def plotted(page) -> dict:
    """Marker positions per legend name, read from the live plotly figure in the page."""
    data = page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        if (!gd || !gd._fullData) return null;
        return gd._fullData.filter(t => t.type === 'scattergl').map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));
    }""")
    return {t["name"]: list(zip(t["x"], t["y"])) for t in (data or [])}


def test_live_map_in_chromium(tmp_path):
    need_browser()
    with running_app(tmp_path) as url, browser_page() as page:
        sign_in(page, url, "nurse")
        started = time.monotonic()
        page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        first = {}
        while time.monotonic() - started < 10 and not {"Nurse", "Patient", "Infusion pump"} <= set(first):
            first = plotted(page)
            time.sleep(0.3)
        assert {"Nurse", "Patient", "Infusion pump"} <= set(first), f"legend seen: {sorted(first)}"
        assert time.monotonic() - started < 10, "markers visible within 10 s of opening the page"
        stamp = re.search(r"updated (\d\d:\d\d:\d\d)", page.inner_text("body")).group(1)
        time.sleep(6)                                   # the fragment refreshes every ~2 s
        later = plotted(page)
        stamp2 = re.search(r"updated (\d\d:\d\d:\d\d)", page.inner_text("body")).group(1)
        assert stamp2 != stamp, "the map says when it was updated, and updates without a reload"
        moved = sum(1 for name in ("Nurse", "Doctor", "Healthcare assistant")
                    for a, b in zip(sorted(first.get(name, [])), sorted(later.get(name, []))) if a != b)
        assert moved >= 1, "staff move on the map"
        assert "decision support, not a medical device" in page.inner_text("body")
