"""Lua scripts of RedisTracking. Each touches keys of one hash tag only (Cluster-safe).

Field/value maps travel as one JSON object of strings (decoded with cjson): far fewer
arguments for redis-py to pack than one per field, and values stay exact decimal strings.

The write scripts (AGENT, LATEST, PUT, WORKFLOW, MEMBERS) are guarded by the writer's
sequence number (see ``once`` and storage.redis.sequence): on the wire KEYS[1]
is the writer's seq key in the call's slot and ARGV[1..3] seq, prev and TTL; the bodies below
see KEYS and ARGV without them. FINISH and SWAP_APPLIED are unguarded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from storage.redis.sequence import SEQ_GUARD


class Script:
    """A script and its SHA1 (what EVALSHA names)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


GUARD = (
    SEQ_GUARD
    + """
local KEYS, ARGV = {unpack(KEYS, 2)}, {unpack(ARGV, 4)}
"""
)


def once(body: str) -> Script:
    """``body`` run at most once per (writer, seq): GUARD first (recording the seq is its
    first write, so an OOM/READONLY rejection leaves nothing half done)."""
    return Script(GUARD + body)


@dataclass(frozen=True, slots=True)
class Call:
    """One script call: the script, its keys and its arguments."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[str | int | bytes, ...]


AGENT = once("""
-- KEYS[1] agent's stats hash, KEYS[2] its recent-decisions list, KEYS[3] its recent-workflows
-- zset, KEYS[4..] its epoch hours of per-minute counters (all of one tag).
-- ARGV[1] JSON {field: amount} of stats, ARGV[2] stats ttl ms (0 = none), ARGV[3] ttl ms of
-- the hours and the list, ARGV[4] list entries kept, ARGV[5..8] the zset's as LATEST's ARGV
-- (ttl ms, cutoff, members kept, JSON {member: seen}; '' = no change), then per hour key (in
-- KEYS order) its JSON {field: amount}, then decision entries, oldest first
-- returns 2 when the stats hash was created by this call (new agent, or Redis lost it), else 1
local created = redis.call('EXISTS', KEYS[1]) == 0
for name, amount in pairs(cjson.decode(ARGV[1])) do
  redis.call('HINCRBYFLOAT', KEYS[1], name, amount)
end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
for i = 4, #KEYS do
  for name, amount in pairs(cjson.decode(ARGV[i + 5])) do
    redis.call('HINCRBYFLOAT', KEYS[i], name, amount)
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
if #ARGV > #KEYS + 5 then
  redis.call('LPUSH', KEYS[2], unpack(ARGV, #KEYS + 6))
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if ARGV[8] ~= '' then
  for member, seen in pairs(cjson.decode(ARGV[8])) do
    redis.call('ZADD', KEYS[3], 'GT', seen, member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[7]) - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
if created then return 2 end
return 1
""")

LATEST = once("""
-- KEYS[1] zset member -> last seen; ARGV: ttl ms, cutoff (drop older), members kept,
-- JSON {member: seen} (each score only ever raised)
for member, seen in pairs(cjson.decode(ARGV[4])) do
  redis.call('ZADD', KEYS[1], 'GT', seen, member)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""")

PUT = once("""
-- KEYS[1] hash; ARGV[1] ttl ms; ARGV[2]: JSON {field: value} (replaces the hash)
redis.call('DEL', KEYS[1])
for name, value in pairs(cjson.decode(ARGV[2])) do
  redis.call('HSET', KEYS[1], name, value)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""")

WORKFLOW = once("""
-- KEYS[1] workflow hash, KEYS[2] its request-id list
-- ARGV: ttl ms, first seen, last seen, JSON {field: amount}, ids kept, then request ids
-- (oldest first) appended to the list
redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if tonumber(ARGV[3]) > last then redis.call('HSET', KEYS[1], 'last_seen', ARGV[3]) end
for name, amount in pairs(cjson.decode(ARGV[4])) do
  redis.call('HINCRBYFLOAT', KEYS[1], name, amount)
end
if #ARGV > 5 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
""")

FINISH = Script("""
-- KEYS[1] workflow hash, KEYS[2] its list; ARGV: ttl ms, field, value pairs
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
""")

SWAP_APPLIED = Script("""
-- KEYS[1] decision record; ARGV: expected applied, new applied, score
-- returns -1 when the record is gone, 0 when applied changed meanwhile, 1 when swapped
local current = redis.call('HGET', KEYS[1], 'applied')
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'applied', ARGV[2], 'score', ARGV[3])
return 1
""")

MEMBERS = once("""
-- KEYS[1] set; ARGV: ttl ms (0 = none), then members
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
""")
