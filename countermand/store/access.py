"""API keys (only a digest of each secret is kept), dashboard sessions and idempotency keys."""

from __future__ import annotations

import json
from typing import Any, cast

from countermand.store import keys
from countermand.store.base import StoreBase


class AccessStore(StoreBase):
    async def put_api_key(self, key_id: str, name: str, record: dict[str, Any]) -> bool:
        """Store a new key; False if the name is taken (nothing written)."""
        if not await self.redis.hsetnx(keys.API_KEY_NAMES, name, key_id):
            return False
        await self.redis.hset(keys.API_KEYS, key_id, json.dumps(record))
        return True

    async def api_key(self, key_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(keys.API_KEYS, key_id)
        return cast(dict[str, Any], json.loads(raw)) if raw else None

    async def api_keys(self) -> list[dict[str, Any]]:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.API_KEYS))
        return [json.loads(value) for value in raw.values()]

    async def delete_api_key(self, name: str) -> str | None:
        """Remove the key named ``name``; its id, or None if there is none."""
        key_id = await self.redis.hget(keys.API_KEY_NAMES, name)
        if not key_id:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.API_KEY_NAMES, name)
            pipe.hdel(keys.API_KEYS, key_id)
            await pipe.execute()
        return str(key_id)

    async def put_session(self, session_id: str, key_id: str, csrf: str, ttl_s: int) -> None:
        name = keys.session(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping={"key_id": key_id, "csrf": csrf})
            pipe.expire(name, ttl_s)
            await pipe.execute()

    async def session(self, session_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(keys.session(session_id))
        return cast(dict[str, str], raw) if raw else None

    async def delete_session(self, session_id: str) -> None:
        await self.redis.delete(keys.session(session_id))

    async def claim_idempotency(self, principal: str, key: str, ttl_s: int) -> str | None:
        """Claim ``key`` for a new request: None if it is ours now; else what it holds (the job
        id it created, or "" while that first request is still running)."""
        name = keys.idempotency(principal, key)
        if await self.redis.set(name, "", nx=True, ex=ttl_s):
            return None
        return str(await self.redis.get(name) or "")

    async def settle_idempotency(
        self, principal: str, key: str, job_id: str | None, ttl_s: int
    ) -> None:
        """The job the request created (kept ``ttl_s``), or None: the request failed, drop it."""
        name = keys.idempotency(principal, key)
        if job_id is None:
            await self.redis.delete(name)
        else:
            await self.redis.set(name, job_id, ex=ttl_s)
