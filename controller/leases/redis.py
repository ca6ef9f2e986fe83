"""Leases in Redis (``CONTROLLER_REDIS_URL``): for replicas sharing one PostgreSQL.

``SET key value NX PX ttl`` grants; renew and release are Lua scripts that
check the value first, so a holder can never extend or free a lease that has
passed to someone else. The token comes from a per-blog ``INCR``, raised to
the store's highest seen token first: a Redis that lost its data (it keeps
nothing on disk here) must not hand out tokens the store would reject.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import redis
from redis.exceptions import RedisError

from controller.errors import LeaseBackendError
from controller.leases.base import Grant, Holding
from controller.store.sql import now_utc

PREFIX = "controller:"

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local floor = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then
  redis.call('SET', KEYS[2], floor)
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token .. '|' .. ARGV[4], 'NX', 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_BREAK = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(blog_id: str) -> str:
    return f"{PREFIX}lease:{blog_id}"


def token_key(blog_id: str) -> str:
    return f"{PREFIX}lease-token:{blog_id}"


def _value(grant: Grant) -> str:
    return f"{grant.holder}|{grant.token}|{grant.acquired_at.isoformat()}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
    )


class RedisLeases:
    def __init__(self, url: str) -> None:
        self.client = connect(url)
        options = self.client.connection_pool.connection_kwargs
        self.where = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._break = self.client.register_script(_BREAK)

    @contextmanager
    def _errors(self, what: str, blog_id: str) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            raise LeaseBackendError(
                f"cannot {what} the lease: Redis at {self.where} does not answer ({exc})",
                blog_id=blog_id,
            ) from exc

    def acquire(self, blog_id: str, holder: str, ttl_ns: int, floor: int) -> Grant | None:
        acquired = now_utc()
        with self._errors("acquire", blog_id):
            token = self._acquire(
                keys=[lease_key(blog_id), token_key(blog_id)],
                args=[holder, max(1, ttl_ns // 1_000_000), floor, acquired.isoformat()],
            )
        return None if token is None else Grant(blog_id, holder, int(token), acquired)

    def renew(self, grant: Grant, ttl_ns: int) -> bool:
        with self._errors("renew", grant.blog_id):
            done = self._renew(
                keys=[lease_key(grant.blog_id)],
                args=[_value(grant), max(1, ttl_ns // 1_000_000)],
            )
        return bool(done)

    def release(self, grant: Grant) -> bool:
        with self._errors("release", grant.blog_id):
            return bool(self._release(keys=[lease_key(grant.blog_id)], args=[_value(grant)]))

    def holding(self, blog_id: str) -> Holding | None:
        with self._errors("read", blog_id):
            pipe = self.client.pipeline()
            pipe.get(lease_key(blog_id))
            pipe.pttl(lease_key(blog_id))
            value, ttl_ms = pipe.execute()
        if not value:
            return None
        holder, token, since = value.split("|", 2)
        expires_at_ns = now_utc().timestamp() * 1e9 + max(0, ttl_ms) * 1e6
        return Holding(holder, int(token), datetime.fromisoformat(since), int(expires_at_ns))

    def break_lease(self, blog_id: str, holder: str) -> bool:
        with self._errors("break", blog_id):
            return bool(self._break(keys=[lease_key(blog_id)], args=[holder]))

    def close(self) -> None:
        self.client.close()
