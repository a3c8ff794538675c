"""Per-participant budgets in Redis, shared by every node: one token bucket per participant and budget."""

from __future__ import annotations

from signaling.partybudgets import Budget
from signaling.redisstate import answering, redis_client

# A token bucket on Redis's clock, so nodes whose clocks differ agree. Returns 1 if a token was taken.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local burst, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / interval)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * interval * 1000) + 1000)
return taken
"""


class RedisBudgets:
    """Budgets every node shares; a key lives only until its bucket would be full again."""

    def __init__(self, url: str, *, prefix: str = "mediation", wait: float = 10.0) -> None:
        self._redis = redis_client(url, wait=wait)
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)

    async def take(self, session_id: str, participant_id: str, name: str, budget: Budget) -> bool:
        # The session's hash tag keeps a room's keys in one Redis Cluster slot.
        key = f"{self._prefix}:budget:{{{session_id}}}:{participant_id}:{name}"
        with answering():
            return bool(await self._take(keys=[key], args=[budget.burst, budget.interval]))

    async def close(self) -> None:
        await self._redis.aclose()
