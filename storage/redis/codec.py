"""Wire-level pieces of RedisStore: the apply script and parsing of stored values."""

from __future__ import annotations

import math

import redis.asyncio
import redis.exceptions

from policies.base import Evidence
from storage.redis.sequence import SEQ_GUARD

UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError
    redis.exceptions.TimeoutError,
    TimeoutError,
    OSError,
)
"""Errors meaning "Redis did not answer": reads fall back, writes are buffered."""

APPLY_LUA = (
    SEQ_GUARD
    + """
-- KEYS[2..]: posterior hashes of one scope (all in the seq key's Cluster slot). ARGV[4..]:
-- now, half_life (0 = none), key TTL in ms (0 = none), then per hash: its cell count n and
-- n times model, d_successes, d_failures. Decays each cell to now, adds, clamps at 0, and
-- (with a TTL) sets the hash to expire that long after this write. Garbage (non-numbers, NaN, inf,
-- negative masses) resets the cell to empty. Returns how many corrupt cells (or non-hash
-- keys) were repaired.
local now = tonumber(ARGV[4])
local hl = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local repaired = 0
local function num(v)
  if not v then return 0 end
  local x = tonumber(v)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then return nil end
  return x
end
local function fmt(x) return string.format('%.17g', x) end
local function add(key, m, ds, df)
  local old = redis.call('HMGET', key, m .. ':s', m .. ':f', m .. ':t')
  local s, f, t = num(old[1]), num(old[2]), num(old[3])
  if s == nil or f == nil or s < 0 or f < 0 or (old[3] and t == nil) then
    s, f, t = 0, 0, now
    repaired = repaired + 1
  end
  if not old[3] then t = now end
  local k = 1
  if hl > 0 and now > t then k = math.pow(0.5, (now - t) / hl) end
  s = s * k + ds
  f = f * k + df
  if not (s > 0) then s = 0 end
  if not (f > 0) then f = 0 end
  if now > t then t = now end
  redis.call('HSET', key, m .. ':s', fmt(s), m .. ':f', fmt(f), m .. ':t', fmt(t))
end
local p = 7
for j = 2, #KEYS do
  local key = KEYS[j]
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'hash' and kind ~= 'none' then
    redis.call('DEL', key)
    repaired = repaired + 1
  end
  local n = tonumber(ARGV[p])
  for i = p + 1, p + 3 * n, 3 do
    add(key, ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]))
  end
  p = p + 1 + 3 * n
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
return repaired
"""
)


Cell = tuple[float, float, float, bool]
"""(successes, failures, t_last, corrupt) of one stored cell."""


def number(raw: object) -> float | None:
    """A stored bytes/str value as a finite float; None for garbage."""
    try:
        x = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def cell(raw_s: object, raw_f: object, raw_t: object, now: float) -> Cell:
    """``(successes, failures, t_last, corrupt)`` from raw HMGET values.

    Absent fields are 0 (and t_last = now); a corrupt cell reads as ``(0, 0, now, True)``.
    A plainly clean cell (finite numbers, s and f >= 0: nearly every read) is decoded at once.
    """
    try:
        s = 0.0 if raw_s is None else float(raw_s)  # type: ignore[arg-type]
        f = 0.0 if raw_f is None else float(raw_f)  # type: ignore[arg-type]
        t = now if raw_t is None else float(raw_t)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _careful_cell(raw_s, raw_f, raw_t, now)
    if s >= 0.0 and f >= 0.0 and math.isfinite(s + f + t):
        return s, f, t, False
    return _careful_cell(raw_s, raw_f, raw_t, now)


def _careful_cell(raw_s: object, raw_f: object, raw_t: object, now: float) -> Cell:
    evidence, corrupt = Evidence.clean(raw_s, raw_f)
    t = now if raw_t is None else number(raw_t)
    if corrupt or t is None:
        return 0.0, 0.0, now, True
    return evidence.successes, evidence.failures, t, False
