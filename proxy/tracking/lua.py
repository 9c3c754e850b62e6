"""Lua scripts of RedisTracking. Each touches keys of one hash tag only (Cluster-safe)."""

from __future__ import annotations

INCR = """
-- KEYS[1] hash; ARGV[1] ttl ms (0: none); ARGV[2..]: field, amount pairs
for i = 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""

PUT = """
-- KEYS[1] hash; ARGV[1] ttl ms; ARGV[2..]: field, value pairs (replaces the hash)
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

WORKFLOW = """
-- KEYS[1] workflow hash, KEYS[2] its request-id list
-- ARGV: ttl ms, now, request id, ids kept, then field, amount pairs
redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if tonumber(ARGV[2]) > last then redis.call('HSET', KEYS[1], 'last_seen', ARGV[2]) end
for i = 5, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""

RECENT = """
-- KEYS[1] zset; ARGV: ttl ms, now, workflow, cutoff (drop older), members kept
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[5]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

FINISH = """
-- KEYS[1] workflow hash, KEYS[2] its list; ARGV: ttl ms, field, value pairs
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""

SWAP_APPLIED = """
-- KEYS[1] decision record; ARGV: expected applied, new applied, score
-- returns -1 when the record is gone, 0 when applied changed meanwhile, 1 when swapped
local current = redis.call('HGET', KEYS[1], 'applied')
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'applied', ARGV[2], 'score', ARGV[3])
return 1
"""
