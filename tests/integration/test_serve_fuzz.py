"""Schemathesis fuzzes the server's OpenAPI schema (a bounded number of cases per operation):
no 5xx with or without the token, and a refused request changes no state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.helpers import wait_for
from tests.serving import TOKEN, Server, serving

CASES = int(os.environ.get("SERVE_FUZZ_CASES", "40"))  # per operation; CI keeps the default


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fuzz") / "factory"
    home.mkdir()
    # Two sessions and no repo: a fuzzed review trigger starts a review that ends at once. A fuzzed
    # doctor trigger must not start the sessions' loops: their cycles would write to the log meanwhile.
    (home / "factory.toml").write_text("[factory]\nsessions = 2\n[doctor]\nrestart_dead = false\n")
    clean = {k: "" for k in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "TELEGRAM_BOT_TOKEN")}
    with serving(home, env=clean) as srv:
        yield srv


def check_case(case: Any, fuzzed_server: Server, authorised: bool) -> None:
    home = fuzzed_server.home
    before = snapshot(home)
    headers = {"Authorization": f"Bearer {TOKEN}"} if authorised else {}
    response = case.call(base_url=fuzzed_server.url, headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    after = snapshot(home)
    kept = ("tasks.json", "review-queue.json")
    if response.status_code >= 400:
        assert {k: after[k] for k in kept} == {k: before[k] for k in kept}, (case.path, response.status_code)
    if response.status_code in (401, 413, 422):
        # Nothing new in the log but the end of a job an earlier case triggered.
        old, new = (
            (before["experiment-log.jsonl"] or b"").splitlines(),
            (after["experiment-log.jsonl"] or b"").splitlines(),
        )
        assert new[: len(old)] == old
        assert all(job_ended(line) for line in new[len(old) :]), (case.path, response.status_code, new[len(old) :])
    if not authorised:
        assert case.path == "/healthz" or response.status_code in (401, 404, 405, 413, 422), case.path
    if response.status_code == 202 and case.path.startswith("/trigger/"):
        # An accepted job runs in the background and writes its own events (the doctor's, the standup's):
        # let it end before the next case, so that "a refusal changes nothing" is about that refusal alone.
        wait_for(lambda: any(job_ended(line) for line in (snapshot(home)["experiment-log.jsonl"] or b"").splitlines()
                             [len((after["experiment-log.jsonl"] or b"").splitlines()) - 1 :]),
                 timeout=120, what=f"the job {case.path} started to end")  # fmt: skip


def job_ended(line: bytes) -> bool:
    event = json.loads(line)
    return event["type"] == "trigger" and "job" in event["data"] and event["data"]["outcome"] != "started"


def snapshot(home: Path) -> dict[str, bytes | None]:
    state = home / "state"
    names = ("tasks.json", "review-queue.json", "experiment-log.jsonl")
    return {n: (state / n).read_bytes() if (state / n).exists() else None for n in names}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("authorised", [True, False], ids=["token", "no-token"])
def test_fuzzed_requests_never_5xx_and_refusals_change_nothing(
    fuzzed_server: Server, mode: GenerationMode, authorised: bool
) -> None:
    schema = schemathesis.openapi.from_url(
        fuzzed_server.url + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/trigger/task", "/api/events", "/webhook/github", "/healthz"}
    fuzzed = 0
    for op in operations:
        if mode is GenerationMode.NEGATIVE and not (list(op.iter_parameters()) or len(op.body)):
            continue  # nothing to get wrong in a request without parameters or body
        fuzzed += 1

        @given(op.as_strategy(generation_mode=mode))
        @settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            check_case(case, fuzzed_server, authorised)

        fuzz()
    assert fuzzed >= 3
