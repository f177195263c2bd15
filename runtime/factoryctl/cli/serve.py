"""`factoryctl serve`: the HTTP triggers and the status page (PM2 keeps it running)."""

from __future__ import annotations

from factoryctl.cli.options import say
from factoryctl.jobs.context import Context


def serve() -> None:
    """HTTP triggers, the read API and the status page on http.bind (needs FACTORY_HTTP_TOKEN)."""
    from factoryctl.jobs.serve.server import serve as run

    run(Context.load(), say=say)
