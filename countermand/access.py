"""Who may do what: API keys with a role and, optionally, the orgs they are limited to.

A key is ``cmk_<id>_<secret>``; it is shown once, when it is made (``countermand keys add``),
and only the SHA-256 digest of its secret is kept in Redis, so a copy of Redis gives nobody a
key. Checking one is a lookup by its id and a constant-time comparison of digests. Keys are
never logged. Roles: ``viewer`` reads (jobs, reports, tenants, policies, audit); ``operator``
also submits and acts (pause, resume, abort, retry, purge, policy runs). A key limited to orgs
sees and acts on those orgs' jobs only. The dashboard exchanges a key for a session (an HttpOnly,
SameSite=Strict cookie) with its own CSRF token for the requests that change something. A
session's id is a bearer credential too: Redis keeps only its digest, as for keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from countermand.errors import UsageError
from countermand.store import Store

KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
KEY_FORMAT = re.compile(r"cmk_([0-9a-f]{16})_([0-9A-Za-z_-]{20,100})", re.ASCII)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the key's name, role and orgs (None: every org)."""

    name: str
    role: Role
    orgs: frozenset[str] | None
    key_id: str

    def sees(self, org: str) -> bool:
        return self.orgs is None or org in self.orgs

    def may_act(self, org: str | None = None) -> bool:
        return self.role is Role.OPERATOR and (org is None or self.sees(org))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    role: Role
    orgs: list[str] | None
    created_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_key(store: Store, name: str, role: Role, orgs: list[str] | None) -> str:
    """Make a key; returns it (the only time it is ever shown)."""
    if not KEY_NAME.fullmatch(name):
        raise UsageError(f"key name {name!r}: 1-64 characters of [A-Za-z0-9_.-]")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    record = {"name": name, "role": role.value, "orgs": sorted(orgs) if orgs else None,
              "digest": _digest(secret), "created_at": round(time.time(), 3)}  # fmt: skip
    if not await store.put_api_key(key_id, name, record):
        raise UsageError(f"a key named {name!r} exists: revoke it first")
    return f"cmk_{key_id}_{secret}"


async def list_keys(store: Store) -> list[KeyInfo]:
    found = [
        KeyInfo(r["name"], Role(r["role"]), r.get("orgs"), float(r.get("created_at", 0)))
        for r in await store.api_keys()
    ]
    return sorted(found, key=lambda k: k.name)


async def revoke_key(store: Store, name: str) -> None:
    if await store.delete_api_key(name) is None:
        raise UsageError(f"no key named {name!r}")


async def authenticate(store: Store, presented: str) -> Principal | None:
    """The principal of a presented key, or None (malformed, unknown, revoked or wrong)."""
    match = KEY_FORMAT.fullmatch(presented.strip())
    if match is None:
        return None
    record = await store.api_key(match[1])
    if record is None:
        return None
    if not hmac.compare_digest(_digest(match[2]), str(record.get("digest", ""))):
        return None
    return principal_of(match[1], record)


def principal_of(key_id: str, record: dict[str, object]) -> Principal:
    orgs = record.get("orgs")
    return Principal(
        name=str(record["name"]),
        role=Role(str(record["role"])),
        orgs=frozenset(str(o) for o in orgs) if isinstance(orgs, list) else None,
        key_id=key_id,
    )


async def open_session(store: Store, principal: Principal, ttl_s: int) -> tuple[str, str]:
    """A dashboard session for ``principal``: (session id for the cookie, CSRF token)."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await store.put_session(_digest(session_id), principal.key_id, csrf, ttl_s)
    return session_id, csrf


async def session_principal(store: Store, session_id: str) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session whose key still exists."""
    session = await store.session(_digest(session_id))
    if session is None:
        return None
    record = await store.api_key(session["key_id"])
    if record is None:  # the key was revoked: its sessions end with it
        return None
    return principal_of(session["key_id"], record), session["csrf"]


async def close_session(store: Store, session_id: str) -> None:
    """End a dashboard session (logout)."""
    await store.delete_session(_digest(session_id))
