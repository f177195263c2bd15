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
    with serving(home) as srv, browser() as tab:
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


LONG = "brl/s2/20261205T105506Z-" + "a-very-long-branch-name-without-spaces" * 3
WORD = "tests/test_stats.py::test_mean_of_an_empty_list_raises_a_value_error_with_a_clear_message_" * 2


def png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")


@needs_chromium
@pytest.mark.parametrize(("width", "mobile"), [(1280, False), (390, True)])
def test_the_page_fits_the_window_with_long_unbroken_text(home: Path, tmp_path: Path, width: int, mobile: bool) -> None:
    """Branch names, test ids and paths are single long words: they wrap, and no card scrolls sideways."""
    now = datetime.now(UTC)
    ctx = populate(home, now)
    ctx.tasks().add("Rename " + WORD, priority="high")
    with ctx.review_queue().store.update() as doc:
        doc["branches"].append({"branch": LONG, "status": "pending", "session": "s2", "queued": "2026-12-05T10:55:06Z",
                                "reasons": ["checks got worse on the merge result: pytest: " + WORD]})  # fmt: skip
    ctx.log.append("alert", session="s2", data={"key": "review:pending", "message": f"{LONG}: {WORD}"})
    ctx.log.append("cto_review", session="s2", data={"branch": LONG, "verdict": "reject", "reasons": [WORD]})
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(home) as srv, browser() as tab:
        tab.screen(width, 900, mobile=mobile)
        tab.open(srv.url + "/")
        tab.evaluate(f"document.querySelector('#token').value = {TOKEN!r}; document.querySelector('form').submit()")
        tab.wait_until("document.title == 'factory status' && document.readyState == 'complete'")
        # The recent events in words, as `log tail` says them; the alert's message, not its key.
        events = tab.evaluate("[...document.querySelectorAll('table.events td.text')].map(td => td.innerText)")
        assert any(e.startswith(f"{LONG} was rejected: {WORD[:100]}") for e in events)
        assert any(e.startswith(f"alert: {LONG}: {WORD[:100]}") for e in events)
        assert tab.evaluate(f"document.body.innerText.includes({LONG + ': ' + WORD!r})")
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        cards = tab.evaluate(
            "[...document.querySelectorAll('section')].filter(s => s.scrollWidth > s.clientWidth)"
            ".map(s => s.querySelector('h2').innerText + ': ' + (s.scrollWidth - s.clientWidth) + 'px')"
        )
        assert cards == [], f"cards that scroll sideways at {width}px: {cards}"
        edge = tab.evaluate("Math.max(...[...document.querySelectorAll('section')]"
                            ".map(s => s.getBoundingClientRect().right))")  # fmt: skip
        shot = SHOTS / f"status-long-words-{width}.png"
        tab.screenshot(shot)
    assert edge <= width
    assert png_width(shot) == width * (2 if mobile else 1)  # the whole width: the right-hand cards are not cut off
