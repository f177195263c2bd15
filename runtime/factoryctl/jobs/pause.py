"""Pause and resume the factory or one session (`factoryctl pause|resume`, the bot): a flag file each.

A running cycle finishes; the loop and the scheduler start nothing new while the flag is there.
Each returns the sentence a person reads.
"""

from __future__ import annotations

from factoryctl.jobs.context import Context


def pause(ctx: Context, session: str | None, reason: str = "") -> str:
    """Pause the factory (`session` None) or one session; `reason` is shown while it waits."""
    flag = ctx.paths.pause_flag(None if session is None else ctx.session(session))
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(reason.strip() + "\n" if reason.strip() else "")
    return f"paused {session or 'the factory'}; `factoryctl resume{' ' + session if session else ''}` undoes it"


def resume(ctx: Context, session: str | None) -> str:
    """Resume the factory or one session after `pause`."""
    flag = ctx.paths.pause_flag(None if session is None else ctx.session(session))
    if not flag.exists():
        return f"{session or 'the factory'} was not paused"
    flag.unlink()
    return f"resumed {session or 'the factory'}"
