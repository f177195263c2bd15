"""Today's spend: per session, and the calls of no session under their job (never a `-`)."""

from __future__ import annotations

from factoryctl.jobs.status import spend_by_session
from factoryctl.state.eventlog import Event
from factoryctl.state.spend import spend_of


def test_spend_names_the_job_of_a_call_that_belongs_to_no_session() -> None:
    def call(session: str | None, purpose: str, usd: float) -> Event:
        return Event("2026-12-05T10:00:00Z", "agent_call", session, {"purpose": purpose, "cost_usd": usd})

    spent = spend_of([call("s10", "cycle", 0.5), call("s2", "cycle", 0.25), call(None, "review", 0.1),
                      call(None, "standup", 0.05), call("s2", "review", 0.1)])  # fmt: skip
    assert list(spent["by_session"].items()) == [("s2", 0.35), ("s10", 0.5)]
    assert spent["no_session"] == {"review": 0.1, "standup": 0.05}
    assert spend_by_session(spent) == "s2 $0.35, s10 $0.50; no session: review $0.10, standup $0.05"
    assert spend_by_session(spend_of([call(None, "doctor", 0.01)])) == "no session: doctor $0.01"
    assert spent["by_purpose"] == {"cycle": 0.75, "review": 0.2, "standup": 0.05}
