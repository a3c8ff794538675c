"""Sign-in throttling: exponential back-off per (username, address), per address and per username.

Why three scopes, and none of them a lock: a guesser at one address is slowed by its pair's back-off;
one address spraying many usernames by its address's; many addresses guessing one username by the
username's, which never applies to an address the owner has signed in from and is capped low, so an
anonymous sender can slow a stranger's attempts but never keep the owner out. Only failures count; a
refused attempt is not evaluated, so it neither costs a password hash nor lengthens the back-off.
Kept in each node's memory: a node restart forgets it, which only ever makes it more lenient.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable


@dataclasses.dataclass
class _Backoff:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    refused: int = 0  # attempts refused since the last block began


@dataclasses.dataclass(frozen=True)
class Block:
    """A back-off that has just begun: audited by the caller as one throttle event."""

    scope: str  # "pair", "address" or "username"
    failures: int
    delay_seconds: float
    refused_before: int  # attempts refused during the previous block of this scope and key


@dataclasses.dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after: int


@dataclasses.dataclass(frozen=True)
class ThrottlePolicy:
    pair_free_failures: int = 3
    address_free_failures: int = 20
    username_free_failures: int = 10
    base_delay: float = 1.0
    max_delay: float = 900.0
    username_max_delay: float = 60.0
    forget_after: float = 900.0  # seconds without a failure after which a scope starts afresh


class SignInThrottle:
    """Decides whether a sign-in attempt may be evaluated, and records how it went."""

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._state: dict[tuple[str, str], _Backoff] = {}
        self._known: dict[str, dict[str, float]] = {}  # username -> address -> last successful sign-in

    def _scopes(self, username: str, address: str) -> list[tuple[str, str, int, float]]:
        p = self.policy
        scopes = [("pair", f"{username}\x00{address}", p.pair_free_failures, p.max_delay),
                  ("address", address, p.address_free_failures, p.max_delay)]
        if address not in self._known.get(username, {}):
            scopes.append(("username", username, p.username_free_failures, p.username_max_delay))
        return scopes

    def check(self, username: str, address: str) -> Refusal | None:
        """None if the attempt may be evaluated; else the scope that refuses it and when to retry."""
        now = self._clock()
        worst: Refusal | None = None
        for scope, key, _, _ in self._scopes(username.casefold(), address):
            state = self._state.get((scope, key))
            if state is not None and state.blocked_until > now:
                state.refused += 1
                retry = max(1, math.ceil(state.blocked_until - now))
                if worst is None or retry > worst.retry_after:
                    worst = Refusal(scope, retry)
        return worst

    def failed(self, username: str, address: str) -> list[Block]:
        """Count a failed attempt; return the back-offs it starts."""
        now = self._clock()
        blocks = []
        for scope, key, free, cap in self._scopes(username.casefold(), address):
            state = self._state.setdefault((scope, key), _Backoff())
            if now - state.last_failure > self.policy.forget_after:
                state.failures = 0
            state.failures += 1
            state.last_failure = now
            if state.failures > free:
                delay = min(self.policy.base_delay * 2 ** (state.failures - free - 1), cap)
                state.blocked_until = now + delay
                blocks.append(Block(scope, state.failures, delay, state.refused))
                state.refused = 0
        if len(self._state) > 50_000:
            self._prune(now)
        return blocks

    def succeeded(self, username: str, address: str) -> None:
        """The owner signed in from here: forget this pair's failures and trust the address for the username."""
        username = username.casefold()
        self._state.pop(("pair", f"{username}\x00{address}"), None)
        known = self._known.setdefault(username, {})
        known[address] = self._clock()
        if len(known) > 32:
            del known[min(known, key=known.__getitem__)]

    def _prune(self, now: float) -> None:
        stale = [k for k, s in self._state.items()
                 if s.blocked_until <= now and now - s.last_failure > self.policy.forget_after]
        for key in stale:
            del self._state[key]
