"""The daily budget: what was spent today, and what the factory does about it.

Spend is the sum of `agent_call` costs since UTC midnight. At `budget.daily_usd` the
budget holds every session back (no new cycles); from `budget.soft_share` of it the factory degrades:
fewer active sessions, the cheaper agent, or both (`budget.degrade`). Both reset at
midnight, because the spend does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from factoryctl.core.config import AgentSection, BudgetSection, Settings

MODEL_FLAGS = ("--model", "-m")


@dataclass(frozen=True)
class BudgetVerdict:
    state: str  # ok | degraded | closed
    spent_usd: float
    daily_usd: float
    soft_usd: float
    reason: str = ""
    held: dict[str, str] = field(default_factory=dict)  # sessions that wait while degraded
    agent: str | None = None  # "cheap" while degraded by model

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "spent_usd": round(self.spent_usd, 4), "daily_usd": self.daily_usd,
                "soft_usd": round(self.soft_usd, 4), "reason": self.reason}  # fmt: skip


def decide_budget(spent_usd: float, budget: BudgetSection, sessions: Sequence[str]) -> BudgetVerdict:
    """Closed at the daily budget; degraded from its soft share on; ok below."""
    daily = budget.daily_usd
    soft = daily * budget.soft_share
    if spent_usd >= daily:
        return BudgetVerdict("closed", spent_usd, daily, soft, reason=f"spent ${spent_usd:.2f} of ${daily:.2f} today")
    if spent_usd < soft:
        return BudgetVerdict("ok", spent_usd, daily, soft)
    reason = f"spent ${spent_usd:.2f}, past {budget.soft_share:.0%} of ${daily:.2f}"
    held: dict[str, str] = {}
    if budget.degrade in ("sessions", "both"):
        keep = budget.degraded_sessions
        held = {s: f"budget: {reason}; {keep} session(s) keep working" for s in sessions[keep:]}
    agent = "cheap" if budget.degrade in ("model", "both") else None
    return BudgetVerdict("degraded", spent_usd, daily, soft, reason=reason, held=held, agent=agent)


def cheap_agent_command(settings: Settings) -> list[str]:
    """budget.cheap_command, or else agent.command with its model swapped for budget.cheap_model."""
    if settings.budget.cheap_command:
        return list(settings.budget.cheap_command)
    argv = list(settings.agent.command)
    for i, arg in enumerate(argv):
        if arg in MODEL_FLAGS and i + 1 < len(argv):
            argv[i + 1] = settings.budget.cheap_model
            return argv
        if arg.startswith("--model="):
            argv[i] = f"--model={settings.budget.cheap_model}"
            return argv
    return [*argv, "--model", settings.budget.cheap_model]


def agent_spec(settings: Settings, mode: str | None) -> AgentSection:
    """The agent a cycle uses: the configured one, or the cheaper one while degraded by model."""
    if mode != "cheap":
        return settings.agent
    return AgentSection(command=cheap_agent_command(settings), timeout_s=settings.agent.timeout_s)
