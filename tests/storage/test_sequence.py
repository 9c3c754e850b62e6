"""Sequencer: slot tags, seq keys in the right Cluster slot, per-slot chaining."""

from __future__ import annotations

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from storage.redis.sequence import Sequencer, slot_tags


def test_every_slot_has_a_short_tag_that_maps_to_it() -> None:
    tags = slot_tags()
    assert len(tags) == REDIS_CLUSTER_HASH_SLOTS
    assert all(key_slot(tag.encode()) == slot and 1 <= len(tag) <= 3 for slot, tag in enumerate(tags))


def test_seq_key_is_in_the_keys_slot_and_one_per_slot() -> None:
    seq = Sequencer("mm")
    for key in ("mm:{agent-1}:stats", "mm:req:r1", "mm:wf:{w}:reqs", "mm:wfs"):
        assert key_slot(seq.key(key).encode()) == key_slot(key.encode())
    assert seq.key("mm:{a}:x") == seq.key("mm:{a}:y") != Sequencer("mm").key("mm:{a}:x")


def test_guards_chain_the_calls_of_each_slot() -> None:
    seq = Sequencer("mm", ttl_s=9.5)
    calls = [("p:{a}:1", seq.number()), ("p:{b}:1", seq.number()), ("p:{a}:2", seq.number())]
    (ka, s1, p1, ttl), (kb, s2, p2, _), (ka2, s3, p3, _) = seq.guards(calls)
    assert (ka == ka2 != kb, ttl) == (True, "10")
    assert [(s1, p1), (s2, p2), (s3, p3)] == [("1", "0"), ("2", "0"), ("3", "1")]


def test_ttl_must_be_at_least_a_second() -> None:
    with pytest.raises(ValueError, match="seq TTL"):
        Sequencer("mm", ttl_s=0.5)
