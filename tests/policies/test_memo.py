"""BoundedMemo: computes once per key, remembers None values, starts over beyond its limit."""

from __future__ import annotations

import pytest

from policies.memo import BoundedMemo


def test_a_key_is_computed_once_and_a_none_value_is_remembered_too() -> None:
    calls: list[int] = []

    def compute(key: int) -> int | None:
        calls.append(key)
        return None if key % 2 else key * 10

    memo: BoundedMemo[int, int | None] = BoundedMemo(compute, limit=10)
    assert [memo(k) for k in (2, 3, 2, 3, 2)] == [20, None, 20, None, 20]
    assert calls == [2, 3]
    assert len(memo) == 2


def test_a_new_key_beyond_the_limit_starts_the_memory_over() -> None:
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    memo: BoundedMemo[str, str] = BoundedMemo(compute, limit=2)
    assert [memo(k) for k in "abc"] == ["A", "B", "C"]
    assert len(memo) == 1  # "c" found the memo full and cleared it
    assert memo("a") == "A" and calls == ["a", "b", "c", "a"]
    assert memo("c") == "C" and calls == ["a", "b", "c", "a"]  # still remembered


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="memo limit must be >= 1, got 0"):
        BoundedMemo(str, limit=0)
