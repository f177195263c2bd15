"""Runtime of the agent factory: the jobs PM2, cron and people start on the server."""

from __future__ import annotations

__version__ = "0.1.0"
