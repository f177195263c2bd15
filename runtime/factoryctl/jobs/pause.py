"""Pause and resume the factory or one session (`factoryctl pause|resume`, the bot): a flag file each (one
host) or an entry of the shared `pauses.json` (a fleet: a pause on the gate holds a worker's sessions).

A running cycle finishes; the loop and the scheduler start nothing new while the flag is there.
Each returns the sentence a person reads.
"""

from __future__ import annotations

from factoryctl.jobs.context import Context


def pause(ctx: Context, session: str | None, reason: str = "") -> str:
    """Pause the factory (`session` None) or one session; `reason` is shown while it waits."""
    ctx.pauses().pause(None if session is None else ctx.session(session), reason)
    return f"paused {session or 'the factory'}; `factoryctl resume{' ' + session if session else ''}` undoes it"


def resume(ctx: Context, session: str | None) -> str:
    """Resume the factory or one session after `pause`."""
    if not ctx.pauses().resume(None if session is None else ctx.session(session)):
        return f"{session or 'the factory'} was not paused"
    return f"resumed {session or 'the factory'}"
