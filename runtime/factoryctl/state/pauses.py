"""Who is paused: the whole factory or one session, with the note a person gave.

With the files backend a pause is a flag file, as it always was (`state/paused`,
`state/paused.s2`, its text the note). With PostgreSQL it is an entry of the shared
document `pauses.json` (`{"paused": "note", "paused.w1-s2": ""}`, the same labels), so a
pause given on the gate (the bot, a person) stops a worker's sessions. A running cycle
finishes; the loop and the scheduler start nothing new while it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from factoryctl.core.fleet import session_order
from factoryctl.core.paths import Paths

if TYPE_CHECKING:
    from factoryctl.state.backend import StateBackend

DOCUMENT = "pauses.json"


def label(session: str | None) -> str:
    """What a pause is called in messages (and its flag file's name): `paused`, `paused.s2`."""
    return "paused" if session is None else f"paused.{session}"


def _order(name: str) -> tuple[bool, tuple[int, str, int, str]]:
    return name != "paused", session_order(name.removeprefix("paused."))


class Pauses:
    def __init__(self, backend: StateBackend, paths: Paths) -> None:
        self.backend = backend
        self.paths = paths
        self.files = backend.kind == "files"

    def all(self) -> dict[str, str]:
        """Every pause that holds, label -> note (`paused` first, then the sessions' by name)."""
        if self.files:
            state = self.paths.state_dir
            flags = [state / "paused", *sorted(state.glob("paused.*"))] if state.is_dir() else []
            found = {f.name: f.read_text(errors="replace").strip() for f in flags if f.is_file()}
            return dict(sorted(found.items(), key=lambda kv: _order(kv[0])))
        doc = self.backend.document(DOCUMENT, dict).read()
        found = {str(k): str(v).strip() for k, v in doc.items() if str(k) == "paused" or str(k).startswith("paused.")}
        return dict(sorted(found.items(), key=lambda kv: _order(kv[0])))

    def note(self, session: str | None) -> str | None:
        """The note of this pause if it holds ("" when none was given), else None."""
        if self.files:
            flag = self.paths.pause_flag(session)
            return flag.read_text(errors="replace").strip() if flag.is_file() else None
        value = self.backend.document(DOCUMENT, dict).read().get(label(session))
        return None if value is None else str(value).strip()

    def why(self, session: str) -> str | None:
        """Why `session` may start no cycle because of a pause (the factory's first), or None."""
        for who in (None, session):
            note = self.note(who)
            if note is not None:
                return f"paused ({label(who)})" + (f": {note}" if note else "")
        return None

    def pause(self, session: str | None, note: str = "") -> None:
        if self.files:
            flag = self.paths.pause_flag(session)
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.write_text(note.strip() + "\n" if note.strip() else "")
            return
        with self.backend.document(DOCUMENT, dict).update() as doc:
            doc[label(session)] = note.strip()

    def resume(self, session: str | None) -> bool:
        """Lift the pause; whether there was one."""
        if self.files:
            flag = self.paths.pause_flag(session)
            if not flag.exists():
                return False
            flag.unlink()
            return True
        with self.backend.document(DOCUMENT, dict).update() as doc:
            return doc.pop(label(session), None) is not None
