"""The server's pure parts: token and signature checks, the bind rule, the webhook's choice,
the window parser, the plots' axes, the commit links and the agent's token usage."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from factoryctl.adapters.agent import parse_result, parse_usage
from factoryctl.adapters.runner import Completed
from factoryctl.core.clock import parse_since
from factoryctl.core.configfile import settings_from_mapping
from factoryctl.core.errors import ConfigError, UsageError
from factoryctl.core.paths import Paths
from factoryctl.jobs.context import Context
from factoryctl.jobs.outcomes import since_for_figures
from factoryctl.jobs.serve import auth, plots
from factoryctl.jobs.serve.github import Deliveries, task_from_issue_event
from factoryctl.jobs.serve.page import commit_url_base
from factoryctl.jobs.serve.server import where

TOKEN = "s3cret-t0ken-0123456789"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        ("Bearer ", False),
        ("", False),
        (None, False),
        ("Bearer ünïcode", False),
    ],
)
def test_bearer_token(header: str | None, ok: bool) -> None:
    assert auth.bearer_ok(header, TOKEN) is ok


@pytest.mark.parametrize("token", [None, "", "   ", "short"])
def test_the_server_refuses_to_run_without_a_real_token(token: str | None) -> None:
    with pytest.raises(ConfigError, match="FACTORY_HTTP_TOKEN"):
        auth.check_token(token)


def test_the_cookie_is_not_the_token_and_only_the_right_one_passes() -> None:
    value = auth.cookie_value(TOKEN)
    assert TOKEN not in value and auth.cookie_ok(value, TOKEN)
    assert not auth.cookie_ok(value, TOKEN + "x") and not auth.cookie_ok("", TOKEN) and not auth.cookie_ok(None, TOKEN)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (sign(b'{"a":1}', "whsec"), True),
        (sign(b'{"a":2}', "whsec"), False),
        (sign(b'{"a":1}', "other"), False),
        (sign(b'{"a":1}', "whsec").replace("sha256=", "sha1="), False),
        ("", False),
        (None, False),
    ],
)
def test_github_signature(header: str | None, ok: bool) -> None:
    assert auth.github_signature_ok(b'{"a":1}', header, "whsec") is ok


def ctx_with(http: dict[str, Any]) -> Context:
    return Context(Paths(Path("/nonexistent")), settings_from_mapping({"http": http}, source="test"))


@pytest.mark.parametrize(
    ("http", "public"),
    [
        ({"bind": "127.0.0.1:8787"}, False),
        ({"bind": "localhost:9000"}, False),
        ({"bind": "[::1]:8787"}, False),
        ({"bind": "0.0.0.0:8787", "allow_public": True}, True),
        ({"bind": "10.0.0.5:80", "allow_public": True}, True),
    ],
)
def test_bind_is_loopback_unless_allowed(http: dict[str, Any], public: bool) -> None:
    assert where(ctx_with(http))[2] is public


@pytest.mark.parametrize("bind", ["0.0.0.0:8787", "10.0.0.5:80", "example.com:8787", "[::]:8787"])
def test_a_public_bind_without_allow_public_is_refused(bind: str) -> None:
    with pytest.raises(ConfigError, match="allow_public"):
        where(ctx_with({"bind": bind}))


def issue_event(label: str = "factory", **issue: Any) -> dict[str, Any]:
    body = {"title": "Fix login", "body": "steps...", "html_url": "https://github.com/o/r/issues/7", **issue}
    return {"action": "labeled", "label": {"name": label}, "issue": body}


@pytest.mark.parametrize(
    ("event", "payload", "title"),
    [
        ("issues", issue_event(), "Fix login"),
        ("issues", issue_event(title="  two\nlines  "), "two lines"),
        ("issues", issue_event(title="x" * 500), "x" * 199 + "…"),
        ("issues", issue_event(label="bug"), None),
        ("issues", {**issue_event(), "action": "opened"}, None),
        ("push", issue_event(), None),
        ("issues", issue_event(title=""), None),
        ("issues", issue_event(title=["not", "text"]), None),
        ("issues", [1, 2], None),
        ("issues", {"action": "labeled", "label": "factory", "issue": {}}, None),
    ],
)
def test_which_github_deliveries_become_a_task(event: str, payload: Any, title: str | None) -> None:
    got = task_from_issue_event(event, payload, "factory")
    assert (got.title if got else None) == title
    if got and "html_url" in payload["issue"]:
        assert got.body.endswith("From GitHub issue https://github.com/o/r/issues/7")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-11-30T08:00", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        ("2026-11-30T08:00Z", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
    ],
)
def test_window_start(text: str, expected: datetime) -> None:
    assert since_for_figures(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "24", "-1h", "999999999999999d", "400d", "2030-01-01", "1h; rm -rf"])
def test_bad_windows_are_one_line_errors(text: str) -> None:
    with pytest.raises(UsageError, match="since") as raised:
        since_for_figures(text, NOW)
    assert "\n" not in str(raised.value)


def test_the_log_reads_back_any_time_the_figures_a_year() -> None:
    assert parse_since("400d", NOW, bound=None) == NOW - timedelta(days=400)
    with pytest.raises(UsageError, match="--since '99999999999d' reaches back before the year 1"):
        parse_since("99999999999d", NOW, bound=None, name="--since")


@pytest.mark.parametrize(
    ("top", "nice"), [(0, 1), (0.3, 0.4), (1, 1), (2.1, 4), (3, 4), (5, 6), (7, 8), (11, 20), (240, 400), (75, 80)]
)
def test_axis_tops_are_round(top: float, nice: float) -> None:
    assert plots.nice_max(top) == nice


def test_plots_escape_their_labels_and_mark_each_datum() -> None:
    svg = plots.bars("t<script>", ["<b>", "x"], [plots.Series("a&b", [1, 2], "#000")], limit=("budget", 3))
    assert "<script>" not in svg and "&lt;b&gt;" in svg and svg.count('class="datum"') == 2
    assert 'data-value="2"' in svg


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r/commit/"),
        ("git@github.com:o/r.git", "https://github.com/o/r/commit/"),
        ("ssh://git@github.com/o/r", "https://github.com/o/r/commit/"),
        ("/srv/origin.git", None),
        ('https://github.com/o/r.git" onmouseover="x', None),
        ("javascript:alert(1)", None),
    ],
)
def test_commit_links_only_for_github_origins(url: str, base: str | None) -> None:
    assert commit_url_base(url) == base


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"input_tokens": 10, "output_tokens": 5}, (10, 5)),
        ({"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7, "output_tokens": 1},
         (117, 1)),
        ({"input_tokens": -3, "output_tokens": float("nan")}, (0, 0)),
        ({"input_tokens": 10**20, "output_tokens": True}, (0, 0)),
        ({"input_tokens": "10"}, (0, 0)),
        ("not an object", (0, 0)),
        (None, (0, 0)),
    ],
)  # fmt: skip
def test_token_usage_is_finite_non_negative_and_bounded(usage: Any, tokens: tuple[int, int]) -> None:
    assert parse_usage({"usage": usage}) == tokens
    out = json.dumps({"type": "result", "subtype": "success", "is_error": False, "usage": usage})
    got = parse_result(Completed(("agent",), 0, out, "", 1.0), 60)
    assert (got.input_tokens, got.output_tokens) == tokens


def test_delivery_ids_are_remembered_bounded_in_number_and_in_time() -> None:
    now = [NOW]
    seen = Deliveries(lambda: now[0], keep=timedelta(hours=1), most=3)
    assert seen.first_time("a") and not seen.first_time("a")
    assert seen.first_time("b") and seen.first_time("c") and seen.first_time("d")  # "a" forgotten: at most 3
    assert len(seen.seen) == 3 and seen.first_time("a")
    now[0] += timedelta(hours=2)
    assert seen.first_time("b") and len(seen.seen) == 1  # the rest expired
    assert not seen.first_time("x" * 101)  # not an id GitHub sends: never acted on
