"""The README's module table matches the runtime's tree: every module and every job's folder is
named in its layer's row, and the table names no module that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime" / "factoryctl"
LAYERS = ("core", "state", "adapters", "rules", "jobs", "cli")


def table_rows() -> dict[str, str]:
    """Layer -> the text of its row in the README's module table."""
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(\w+)/` \| (.*) \|$", line)
        if match and match.group(1) in LAYERS:
            rows[match.group(1)] = match.group(2)
    return rows


def named(row: str) -> set[str]:
    return set(re.findall(r"`(\w+)/?`", row))


def modules(layer: str) -> set[str]:
    folder = RUNTIME / layer
    found = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    found |= {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for package in (p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        found |= {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    return found


def test_every_layer_has_a_row() -> None:
    assert set(table_rows()) == set(LAYERS)


def test_every_module_and_folder_is_named_in_its_layers_row() -> None:
    rows = table_rows()
    missing = {layer: sorted(modules(layer) - named(rows[layer])) for layer in LAYERS}
    assert not any(missing.values()), f"not in the README's module table: {missing}"


def test_the_table_names_only_modules_that_exist() -> None:
    everything = set().union(*(modules(layer) for layer in LAYERS))
    stale = {layer: sorted(listed(row) - everything) for layer, row in table_rows().items()}
    assert not any(stale.values()), f"the README names modules that are gone: {stale}"


def listed(row: str) -> set[str]:
    """The names a row lists as modules: a backquoted name opening an item ("`x` (what it is)", "`x`,")."""
    return set(re.findall(r"(?:^|, |: |\()`(\w+)`(?= \(|,|\)| \+| and|$)", row))


def test_a_gone_module_in_the_table_is_found() -> None:
    row = table_rows()["jobs"].replace("`cycle`,", "`cycle`, `ghost` (a module that is gone),")
    assert "ghost" in listed(row) and "ghost" not in modules("jobs")
