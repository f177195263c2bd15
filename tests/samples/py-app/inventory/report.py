"""Text report of a stock."""

from __future__ import annotations

from inventory.stock import Stock


def line(item: str, stock: Stock) -> str:
    return f"{item}: {stock.count(item)}"


def report(items: list[str], stock: Stock) -> str:
    return "\n".join(line(item, stock) for item in sorted(items))
