import pytest

from inventory.report import report
from inventory.stock import OutOfStock, Stock


def test_add_then_count() -> None:
    stock = Stock()
    stock.add("apple", 3)
    assert stock.count("apple") == 3


def test_take_reduces() -> None:
    stock = Stock()
    stock.add("apple", 3)
    stock.take("apple", 2)
    assert stock.count("apple") == 1


def test_take_too_many() -> None:
    stock = Stock()
    with pytest.raises(OutOfStock):
        stock.take("pear", 1)


def test_add_zero_refused() -> None:
    with pytest.raises(ValueError):
        Stock().add("apple", 0)


def test_report_sorted() -> None:
    stock = Stock()
    stock.add("pear", 1)
    stock.add("apple", 2)
    assert report(["pear", "apple"], stock) == "apple: 2\npear: 1"
