"""What every section of factory.toml is built on: strict, frozen, no unknown key; bounded seconds."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

WEEK_S = 7 * 86400  # no wait or interval is longer: bigger numbers overflow sleeps and timestamps
Seconds = Annotated[int, Field(gt=0, le=WEEK_S)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
