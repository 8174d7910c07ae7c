"""API keys, sessions and the audit log against the session's Redis."""

from __future__ import annotations

import secrets

import pytest

from countermand import access, audit
from countermand.access import Role
from countermand.audit import Actor
from countermand.errors import UsageError
from countermand.store import Store, keys
from tests.conftest import run


def test_a_key_is_shown_once_and_only_its_digest_is_kept(redis_url: str) -> None:
    async def main() -> None:
        store = Store.connect(redis_url)
        try:
            name = f"k-{secrets.token_hex(3)}"
            key = await access.add_key(store, name, Role.VIEWER, ["org-a"])
            principal = await access.authenticate(store, key)
            assert principal is not None and principal.name == name
            assert principal.sees("org-a") and not principal.sees("org-b")
            assert not principal.may_act("org-a")  # a viewer
            stored = await store.redis.hgetall(keys.API_KEYS)
            assert key.rsplit("_", 1)[1] not in repr(stored)
            wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
            assert await access.authenticate(store, wrong) is None
            with pytest.raises(UsageError, match="exists"):
                await access.add_key(store, name, Role.OPERATOR, None)
            await access.revoke_key(store, name)
            assert await access.authenticate(store, key) is None
        finally:
            await store.close()

    run(main())


def test_malformed_keys_are_refused_without_a_lookup(redis_url: str) -> None:
    async def main() -> None:
        store = Store.connect(redis_url)
        try:
            for presented in ("", "Bearer x", "cmk_short_x", "cmk_" + "g" * 16 + "_" + "x" * 40):
                assert await access.authenticate(store, presented) is None
        finally:
            await store.close()

    run(main())


def test_sessions_end_with_their_key(redis_url: str) -> None:
    async def main() -> None:
        store = Store.connect(redis_url)
        try:
            name = f"s-{secrets.token_hex(3)}"
            key = await access.add_key(store, name, Role.OPERATOR, None)
            principal = await access.authenticate(store, key)
            assert principal is not None
            session_id, csrf = await access.open_session(store, principal, 60)
            found = await access.session_principal(store, session_id)
            assert found is not None and found[1] == csrf and found[0].may_act("any-org")
            await access.revoke_key(store, name)
            assert await access.session_principal(store, session_id) is None
        finally:
            await store.close()

    run(main())


def test_the_audit_log_keeps_no_secret_and_reads_newest_first(redis_url: str) -> None:
    async def main() -> None:
        store = Store.connect(redis_url)
        try:
            job = secrets.token_hex(8)
            url = "https://user:pw@hooks.example/x?token=secret#frag"
            await audit.record(store, Actor.key("ops"), "submit", job, notify=audit.safe_url(url))
            await audit.record(store, Actor.os_user(), "pause", job)
            found = await audit.entries(store, job_id=job)
            assert [e.action for e in found] == ["pause", "submit"]
            assert found[1].params == {"notify": "https://hooks.example/x"}
            assert found[1].actor == "key:ops" and found[0].actor.startswith("os:")
            older = await audit.entries(store, job_id=job, before=found[0].id)
            assert [e.action for e in older] == ["submit"]
        finally:
            await store.close()

    run(main())
