"""Reserving a received chunk from a synchronous context (Celery's ``task_received`` runs in
the worker's main process, outside any event loop): the same script and keys as the store."""

from __future__ import annotations

from functools import cache

import redis

from countermand.store import keys
from countermand.store.lua import Scripts


@cache
def _scripts(url: str) -> Scripts:
    return Scripts(redis.Redis.from_url(url, decode_responses=True))


def reserve_chunk(url: str, job_id: str, chunk: int, token: str, ttl_ms: int) -> bool:
    """Hold the chunk for ``ttl_ms`` under ``token`` unless a live owner has it (reserve.lua)."""
    answer = _scripts(url).reserve(keys=keys.chunk_keys(job_id), args=[chunk, token, ttl_ms])
    return bool(answer)
