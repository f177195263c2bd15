"""The jobs PM2, cron and tmux start on the server, as data: the deploy renders them from here.

`JOBS` lists every job of the design (their commands are fixed in the contract); the
deploy renders them all, but for those whose secret is missing (`needs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["pm2", "cron", "tmux"]


@dataclass(frozen=True)
class Job:
    """One job: how it is started, with which `factoryctl` arguments, and what it needs."""

    name: str  # unique; the PM2 app is `factory-NAME`, the log file `logs/NAME.log`
    kind: Kind  # pm2: long-lived; cron: periodic one-shot; tmux: one session per agent
    argv: tuple[str, ...]  # factoryctl's arguments; "{session}" stands for s1..sN (tmux)
    schedule: str = ""  # cron only: the five time fields
    needs: str = ""  # a secret (environment variable) without which the job is not deployed


JOBS: tuple[Job, ...] = (
    Job("loop", "tmux", ("loop", "{session}")),
    Job("scheduler", "pm2", ("scheduler",)),
    Job("bot", "pm2", ("bot",), needs="TELEGRAM_BOT_TOKEN"),
    Job("serve", "pm2", ("serve",), needs="FACTORY_HTTP_TOKEN"),
    Job("review", "cron", ("review",), schedule="0 */2 * * *"),
    Job("standup", "cron", ("standup",), schedule="30 1-23/2 * * *"),
    Job("doctor", "cron", ("doctor",), schedule="15 */3 * * *"),
    Job("bot-improve", "cron", ("bot", "improve"), schedule="45 */6 * * *", needs="TELEGRAM_BOT_TOKEN"),
)

# A host's part in a factory of several hosts (host data `factory_role`). "all": the whole factory
# on one host (today's default). "gate": the merge gate, scheduler, standup, doctor, bot, serve
# (and PostgreSQL, the shared state). "worker": the agents' loops and a scheduler for its own
# sessions and heavy slots. The jobs each role runs (None: every job).
Role = Literal["all", "gate", "worker"]
ROLES: tuple[Role, ...] = ("all", "gate", "worker")
ROLE_JOBS: dict[Role, frozenset[str] | None] = {
    "all": None,
    "gate": frozenset(j.name for j in JOBS if j.name != "loop"),
    "worker": frozenset({"loop", "scheduler"}),
}
