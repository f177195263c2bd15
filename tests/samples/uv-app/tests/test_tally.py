from tally import tally


def test_counts_each_item() -> None:
    assert tally(["a", "b", "a"]) == {"a": 2, "b": 1}


def test_nothing_counts_nothing() -> None:
    assert tally([]) == {}
