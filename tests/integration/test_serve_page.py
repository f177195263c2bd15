"""The status page in headless Chromium with a populated factory home: signing in through the
form, the plots drawn with data, hostile text shown as text, no request leaving 127.0.0.1,
and screenshots (desktop and phone) saved for a person to look at."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import browser, chromium
from tests.populate import populate
from tests.serving import TOKEN, serving

SHOTS = Path(os.environ.get("SERVE_SCREENSHOTS", "/tmp/factory-serve-screenshots"))

needs_chromium = pytest.mark.skipif(
    chromium() is None and os.environ.get("CI") != "true",
    reason="chromium is not installed (scripts/setup.sh installs Debian's package)",
)


@needs_chromium
def test_the_page_signs_in_draws_its_plots_and_escapes_hostile_text(home: Path, tmp_path: Path) -> None:
    populate(home, datetime.now(UTC))
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(home) as srv, browser(tmp_path / "profile") as tab:
        tab.screen(1280, 900)
        tab.open(srv.url + "/")
        assert tab.evaluate("document.querySelector('form input[name=token]') !== null")  # the login form
        tab.evaluate(f"document.querySelector('#token').value = {TOKEN!r}; document.querySelector('form').submit()")
        tab.wait_until("document.title == 'factory status' && document.readyState == 'complete'")
        cookie = tab.evaluate("document.cookie")
        assert cookie == ""  # HttpOnly: the page's script could not read it even if it had one
        plots = tab.evaluate(
            "[...document.querySelectorAll('svg.plot')].map(s => [s.getAttribute('aria-label'),"
            " [...s.querySelectorAll('.datum')].map(d => parseFloat(d.dataset.value))])"
        )
        assert len(plots) == 5
        for label, values in plots:
            assert values and any(v > 0 for v in values), f"plot {label!r} has no data"
        sizes = tab.evaluate("[...document.querySelectorAll('svg.plot')].map(s => s.getBoundingClientRect().width)")
        assert all(w > 300 for w in sizes)
        # The hostile task title is text on the page, not markup: no script ran, no <b> made.
        assert tab.evaluate("document.body.innerText.includes('<script>alert(\"pwned\")</script> & <b>bold</b>')")
        assert tab.evaluate("document.querySelectorAll('script').length") == 0
        assert tab.evaluate("document.querySelectorAll('td b').length") == 4  # only the session names are bold
        # Self-contained: every resource the page loaded came from the server itself.
        hosts = tab.evaluate("performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
        assert all(h == srv.url.removeprefix("http://") for h in hosts)
        assert tab.evaluate("document.querySelector('meta[http-equiv=refresh]').content") == "30"
        tab.screenshot(SHOTS / "status-desktop.png")
        tab.screen(390, 844, mobile=True)
        tab.open(srv.url + "/")
        overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the phone view scrolls sideways by {overflow}px"
        tab.screenshot(SHOTS / "status-phone.png")
    assert (SHOTS / "status-desktop.png").stat().st_size > 20_000
