"""The audit log: a Redis stream of actions (who, what, which job, with which parameters),
trimmed by age (``AUDIT_RETENTION_DAYS``)."""

from __future__ import annotations

import json
import time
from typing import Any, cast

from countermand.store import keys
from countermand.store.base import StoreBase


class AuditStore(StoreBase):
    async def append_audit(self, entry: dict[str, Any], retention_s: float) -> str:
        oldest_ms = int((time.time() - retention_s) * 1000)
        fields: dict[Any, Any] = {
            "entry": json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        }
        entry_id = await self.redis.xadd(
            keys.AUDIT, fields, minid=f"{oldest_ms}-0", approximate=True
        )
        return str(entry_id)

    async def audit_entries(
        self, *, before: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, Any]]]:
        """Newest first, ``count`` at most, older than the entry id ``before`` if given."""
        if before is not None and before.strip("0-") == "":
            return []  # nothing is older than the stream's first possible id
        top = f"({before}" if before else "+"
        raw = cast(
            list[tuple[str, dict[str, str]]],
            await self.redis.xrevrange(keys.AUDIT, max=top, min="-", count=count),
        )
        return [(str(i), cast(dict[str, Any], json.loads(f["entry"]))) for i, f in raw]
