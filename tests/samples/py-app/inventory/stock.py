"""Quantities on hand, per item."""

from __future__ import annotations


class OutOfStock(Exception):
    """More was taken than there is."""


class Stock:
    def __init__(self) -> None:
        self._items: dict[str, int] = {}

    def add(self, item: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._items[item] = self._items.get(item, 0) + quantity

    def take(self, item: str, quantity: int) -> None:
        have = self._items.get(item, 0)
        if quantity > have:
            raise OutOfStock(item)
        self._items[item] = have - quantity

    def count(self, item: str) -> int:
        return self._items.get(item, 0)
