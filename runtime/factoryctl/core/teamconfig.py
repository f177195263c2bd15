"""factory.toml's sections of the team's memory: the standup, the doctor and the skill files."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from factoryctl.core.configbase import Seconds
from factoryctl.core.configbase import Section as _Section


class StandupSection(_Section):
    parallel: Annotated[int, Field(ge=1, le=64, description="round calls made at once")] = 8
    lookback_s: Seconds = Field(86400, description="the facts reach back to the last standup, at most this far")
    pane_lines: Annotated[int, Field(ge=0, le=200, description="last lines of each session's tmux pane")] = 15


class DoctorSection(_Section):
    window_s: Seconds = Field(10800, description="how far back the doctor looks at each session")
    error_loop_after: Annotated[
        int, Field(ge=2, le=50, description="this many failures in a row with one signature is an error loop")
    ] = 3
    pause_error_looping: bool = Field(False, description="pause a session the doctor finds error-looping")
    restart_dead: bool = Field(True, description="restart a session whose tmux pane is dead or missing")


class SkillsSection(_Section):
    max_count: Annotated[int, Field(ge=1, le=500, description="no new skill is written past this many")] = 40
    max_chars: Annotated[int, Field(ge=200, le=20_000, description="a skill file's body at most this long")] = 2000
    similarity: Annotated[
        float, Field(gt=0, le=1, strict=False, description="a new skill this similar to an old one is refused")
    ] = 0.6
    retire_after_days: Annotated[int, Field(gt=0, le=3650)] = Field(
        14, description="a skill not shown for this long is a retire candidate"
    )
