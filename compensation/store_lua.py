"""The Redis store's server-side scripts (see ``compensation.store`` for the
rules they apply). ARGV of the apply script: threshold (µs), arrival (µs),
node id, the whole batch as one string of "key at_us 0|1\\n" lines, then the
cut-off (µs) of the node's member index: KEYS[8] scores each member by their
latest beat on the node (entitlements are scoped to it) and forgets those
last seen before the cut-off."""

APPLY_LUA = """
local live, silent, ended, wmkey, arrkey, gaps, nodes, members = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local seen = {}
local thr = tonumber(ARGV[1])
local node = ARGV[3]
local wm = tonumber(redis.call('GET', wmkey) or '-1')
local function gap(key, s, e)
  redis.call('XADD', gaps, '*', 'node', node, 'key', key, 'start', string.format('%d', s), 'end', string.format('%d', e))
end
for key, atraw, flag in string.gmatch(ARGV[4], '(%S+) (%d+) ([01])\\n') do
  local at = tonumber(atraw)
  local isend = flag == '1'
  local member = string.match(key, '^([^|]+)|')
  if member and (not seen[member] or at > seen[member]) then seen[member] = at end
  if wm >= 0 and at - wm > thr then gap('', wm, at) end
  if at > wm then wm = at end
  local prev = redis.call('ZSCORE', live, key)
  local was_silent = false
  if not prev then
    prev = redis.call('ZSCORE', silent, key)
    if prev then was_silent = true end
  end
  if prev then prev = tonumber(prev) end
  local e = redis.call('ZSCORE', ended, key)
  if e then e = tonumber(e) end
  if isend then
    if prev then
      if at > prev then
        if at - prev > thr then gap(key, prev, at) end
        redis.call('ZREM', live, key)
        redis.call('ZREM', silent, key)
        redis.call('ZADD', ended, at, key)
      end
    elseif (not e) or at > e then
      redis.call('ZADD', ended, at, key)
    end
  else
    if e and at <= e then
      -- a late beat from before the logout: nothing
    elseif prev then
      if at > prev then
        if at - prev > thr then gap(key, prev, at) end
        if was_silent then redis.call('ZREM', silent, key) end
        redis.call('ZADD', live, at, key)
      end
    else
      if e then redis.call('ZREM', ended, key) end
      redis.call('ZADD', live, at, key)
    end
  end
end
for member, at in pairs(seen) do redis.call('ZADD', members, 'GT', string.format('%d', at), member) end
redis.call('ZREMRANGEBYSCORE', members, '-inf', '(' .. ARGV[5])
if wm >= 0 then redis.call('SET', wmkey, string.format('%d', wm)) end
redis.call('SET', arrkey, ARGV[2])
redis.call('SADD', nodes, node)
return 1
"""

FLAG_LUA = """
local moved = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #moved, 2 do
  redis.call('ZREM', KEYS[1], moved[i])
  redis.call('ZADD', KEYS[2], moved[i + 1], moved[i])
end
return moved
"""
