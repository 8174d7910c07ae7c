"""The audit log: every action that changes something, with its actor, in one Redis stream.

Actions: ``submit``, ``pause``, ``resume``, ``abort``, ``retry``, ``purge``, ``policy_run``,
``key_add``, ``key_revoke``, and the notifier's ``webhook_failed``. The actor is the API key's
name (``key:<name>``), the operating-system user of the CLI (``os:<user>``), or the part of
Countermand that acted on its own (``system:<part>``). Parameters never hold a secret: a URL's
query string and credentials are dropped. Entries are kept ``AUDIT_RETENTION_DAYS``.
"""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from countermand.errors import UsageError
from countermand.settings import get_settings
from countermand.store import Store


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # key, os, system
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def os_user(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name on this system (a bare container)
            user = "unknown"
        return cls("os", user)

    @classmethod
    def key(cls, name: str) -> Actor:
        return cls("key", name)

    @classmethod
    def system(cls, part: str) -> Actor:
        return cls("system", part)


class AuditEntry(BaseModel):
    id: str
    at: float  # unix seconds
    actor: str
    action: str
    job_id: str | None = None
    params: dict[str, Any] = {}


def iso_time(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def safe_url(url: str) -> str:
    """A URL fit for the audit log: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # not a number or out of range: shown as "?"
        host += ":?"
    else:
        if port is not None:
            host += f":{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def record(
    store: Store,
    actor: Actor,
    action: str,
    job_id: str | None = None,
    retention_days: float | None = None,
    **params: Any,
) -> None:
    """Append one entry (kept ``retention_days``, by default ``AUDIT_RETENTION_DAYS``)."""
    if retention_days is None:
        retention_days = get_settings().audit_retention_days
    kept = {k: v for k, v in params.items() if v is not None}
    entry = {"at": round(time.time(), 3), "actor": str(actor), "action": action,
             "job_id": job_id, "params": kept}  # fmt: skip
    await store.append_audit(entry, retention_days * 86_400)


def check_entry_id(value: str) -> None:
    ms, dash, seq = value.partition("-")
    if not (dash and ms.isdigit() and seq.isdigit() and int(ms) < 2**64 and int(seq) < 2**64):
        raise UsageError(
            f"before: {value[:60]!r} is not an audit entry id (<ms>-<seq>, each < 2**64)"
        )


async def entries(
    store: Store, *, job_id: str | None = None, limit: int = 100, before: str | None = None
) -> list[AuditEntry]:
    """Newest first; only ``job_id``'s if given (read in pages until ``limit`` are found).
    ``before`` is an entry id, ``<ms>-<seq>``, each part a number Redis can hold (< 2**64)."""
    if before is not None:
        check_entry_id(before)
    found: list[AuditEntry] = []
    cursor = before
    while len(found) < limit:
        page = await store.audit_entries(before=cursor, count=max(limit, 100))
        if not page:
            break
        for entry_id, raw in page:
            if job_id is None or raw.get("job_id") == job_id:
                found.append(AuditEntry(id=entry_id, **raw))
        cursor = page[-1][0]
    return found[:limit]
