"""The review queue (state/review-queue.json): pushed branches waiting for the merge gate.

Entries are `ReviewEntry` values, validated field by field when read. An entry that does
not validate is never dropped from the file (a person may want to repair it); readers get
it back as a problem to report, and writers leave it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factoryctl.core.errors import BadRecord, FactoryError, NotFound
from factoryctl.core.records import QueueStatus, ReviewEntry
from factoryctl.state.stores import JsonStore

if TYPE_CHECKING:
    from factoryctl.state.backend import Document


@dataclass(frozen=True)
class QueueRead:
    entries: tuple[ReviewEntry, ...]
    problems: tuple[str, ...]  # one line per entry that did not validate

    def pending(self) -> list[ReviewEntry]:
        return [e for e in self.entries if e.status is QueueStatus.PENDING]


def empty() -> dict[str, Any]:
    return {"branches": []}


class ReviewQueue:
    def __init__(self, store: Document) -> None:
        self.store = store

    @classmethod
    def at(cls, path: Path) -> ReviewQueue:
        return cls(JsonStore(path, empty))

    def _raw(self, doc: Any) -> list[Any]:
        raw = doc.get("branches", [])
        if not isinstance(raw, list):
            raise FactoryError(f"{self.store.path}: 'branches' must be a list; fix it or move the file aside")
        return raw

    def read(self) -> QueueRead:
        entries, problems = [], []
        for i, raw in enumerate(self._raw(self.store.read())):
            try:
                entries.append(ReviewEntry.from_dict(raw))
            except BadRecord as exc:
                name = raw.get("branch") if isinstance(raw, dict) else None
                problems.append(f"{self.store.path.name} entry {i}" + (f" ({name!r})" if name else "") + f": {exc}")
        return QueueRead(tuple(entries), tuple(problems))

    def entries(self) -> list[ReviewEntry]:
        return list(self.read().entries)

    def find(self, branch: str) -> ReviewEntry:
        for entry in self.read().entries:
            if entry.branch == branch:
                return entry
        raise NotFound(f"no branch {branch!r} in the review queue (see `factoryctl queue list`)")

    def add_pending(self, entry: ReviewEntry) -> None:
        """Queue a pushed branch for review (once: a branch already queued is replaced)."""
        record = entry.but(status=QueueStatus.PENDING, reasons=()).as_dict()
        with self.store.update() as doc:
            branches = self._raw(doc)
            for i, existing in enumerate(branches):
                if isinstance(existing, dict) and existing.get("branch") == entry.branch:
                    branches[i] = record
                    break
            else:
                branches.append(record)
            doc["branches"] = branches

    def update(self, branch: str, **changes: Any) -> ReviewEntry:
        """Change fields of one entry under the lock; returns the entry as written."""
        with self.store.update() as doc:
            branches = self._raw(doc)
            for i, raw in enumerate(branches):
                if isinstance(raw, dict) and raw.get("branch") == branch:
                    entry = ReviewEntry.from_dict(raw).but(**changes)
                    branches[i] = entry.as_dict()
                    return entry
        raise NotFound(f"no branch {branch!r} in the review queue (see `factoryctl queue list`)")
