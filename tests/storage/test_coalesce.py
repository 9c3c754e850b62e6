"""Coalesced: sums that carry per-request parts (one entry per key, bounded by bytes; past
the bound their parts are dropped and their sums kept)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from storage.redis.coalesce import Coalesced


@dataclass
class Item:
    """A sum ``total`` of key ``name`` with per-request ``parts`` (bytes counted)."""

    name: str
    total: float
    parts: list[bytes] = field(default_factory=list)


class Rules:
    def key(self, item: Item) -> Hashable:
        return item.name

    def merge(self, older: Item, newer: Item) -> Item:
        older.total += newer.total
        older.parts += newer.parts
        return older

    def size(self, item: Item) -> int:
        return sum(len(p) for p in item.parts)

    def shed(self, item: Item) -> Item | None:
        item.parts = []
        return item


def totals(items: list[Item]) -> dict[str, tuple[float, int]]:
    return {i.name: (i.total, len(i.parts)) for i in items}


def test_a_sum_that_gains_parts_stays_one_entry_and_counts_its_bytes() -> None:
    buffer = Coalesced(Rules(), max_keys=10, max_bytes=1_000)
    assert buffer.add([Item("a", 1.0), Item("a", 2.0, [b"x" * 10]), Item("a", 3.0)]) == 0
    assert (len(buffer), buffer.bytes) == (1, 10)
    assert totals(buffer.take()) == {"a": (6.0, 1)}


def test_past_the_byte_bound_the_oldest_parts_are_dropped_and_every_sum_kept() -> None:
    buffer = Coalesced(Rules(), max_keys=1, max_bytes=100)
    buffer.add([Item("a", 1.0, [b"x" * 60]), Item("b", 1.0)])  # a record, and one sum: full
    buffer.add([Item("b", 1.0, [b"y" * 60])])  # over the bound: a's parts (the oldest) go
    assert (buffer.overflowed, buffer.bytes) == (1, 60)
    buffer.add([Item("c", 1.0)])  # a new sum beyond max_keys (a's sum holds the room): dropped
    assert buffer.dropped == 2
    assert totals(buffer.take()) == {"a": (1.0, 0), "b": (2.0, 1)}


def test_restored_sums_merge_into_held_records_even_when_the_sums_are_full() -> None:
    buffer = Coalesced(Rules(), max_keys=1, max_bytes=1_000)
    buffer.add([Item("a", 1.0), Item("b", 1.0, [b"new"])])
    assert buffer.restore([Item("b", 5.0)]) == 0  # b's key is held (as a record)
    taken = buffer.take()
    assert totals(taken) == {"a": (1.0, 0), "b": (6.0, 1)}
