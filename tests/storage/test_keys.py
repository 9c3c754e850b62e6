"""The posterior key schema: encoded scopes and contexts, parsed back; remembered keys."""

from __future__ import annotations

from policies.base import POOLED, Table
from storage.redis import keys


def test_keys_encode_braces_globs_and_the_agent_level_context_and_parse_back() -> None:
    tables = [Table("bot"), Table(POOLED), Table("a{b}*", "code"), Table("bot", "_x"), Table("bot", "sql")]
    names = [keys.post_key("mm", t) for t in tables]
    assert names[:2] == ["mm:{bot}:post:_all", "mm:{%2A}:post:_all"]
    assert names[2] == "mm:{a%7Bb%7D%2A}:post:code"
    assert names[3] == "mm:{bot}:post:%5Fx"  # a real context never reads as the agent level
    assert [keys.parse_post_key("mm", n) for n in names] == tables
    assert keys.parse_post_key("other", names[0]) is None


def test_remembered_keys_are_the_keys_and_start_over_beyond_their_limit() -> None:
    remembered = keys.PostKeys("mm", limit=2)
    tables = [Table("a"), Table("b", "code"), Table("c")]
    assert [remembered(t) for t in tables] == [keys.post_key("mm", t) for t in tables]
    assert len(remembered) == 1  # the third started the memory over
    assert remembered(tables[0]) == "mm:{a}:post:_all"
