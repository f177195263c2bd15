"""No two test modules share a file name: without packages under tests/, pytest refuses to collect
the second ("import file mismatch"), and only a run of the whole suite (CI) would find it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "samples" not in p.relative_to(TESTS).parts)
    assert [n for n, count in names.items() if count > 1] == []
