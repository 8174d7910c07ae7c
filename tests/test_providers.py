"""Providers against the simulator as a real HTTP server (in this process), no Celery."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from countermand.credentials import AppliveryToken, Credential, EnosKeys
from countermand.errors import Misconfigured, TransientError, Unauthorized, UnreachableError
from countermand.localredis import free_port
from countermand.models import Outcome
from countermand.providers import ProviderContext, get_spec
from countermand.providers.enos_auth import params_data, signature
from countermand.providers.transport import Timeouts, Transport
from countermand.simulator import SIMULATOR, SimulatorConfig, start
from countermand.simulator.state import parse
from tests.callpath import target_calls
from tests.conftest import run
from tests.scenarios import SCENARIOS, enos

TOKEN = AppliveryToken(SecretStr("sim-applivery-token"))
T = TypeVar("T")


class Once:
    """A call path without pacing or retries: providers' own behaviour, one try per request
    (the real path, ``countermand.calls``, is tested in test_calls.py)."""

    def __init__(self) -> None:
        self.uncertain_tries = 0
        self.made = 0

    async def __call__(self, send: Callable[[], Awaitable[T]], *, kind: str = "cancel") -> T:
        self.made += 1
        try:
            return await send()
        except TransientError as exc:
            self.uncertain_tries += exc.uncertain
            raise


KEYS = EnosKeys(SecretStr("sim-access-key"), SecretStr("sim-secret-key"))


@dataclass
class Sim:
    url: str
    transport: Transport
    app: Any

    def context(
        self, org: str, credential: Credential, base: str | None = None, created: int | None = None
    ) -> ProviderContext:
        return ProviderContext(
            transport=self.transport,
            org=org,
            base_url=base or self.url,
            credential=credential,
            timeout=Timeouts(total=3, connect=3),
            shared={},
            job_created_ms=created,
        )

    def seed(self, provider: str, records: list[dict[str, Any]]) -> None:
        self.app[SIMULATOR].store.add(provider, parse(provider, records))


@asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[Sim]:
    runner, port = await start(SimulatorConfig(**config))
    app = runner.app
    try:
        transport = Transport(limit=100)
        try:
            yield Sim(f"http://127.0.0.1:{port}", transport, app)
        finally:
            await transport.close()
    finally:
        await runner.cleanup()


def with_sim(body: Callable[[Sim], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        async with simulator(**config) as sim:
            await body(sim)

    run(main())


def test_enos_signature_matches_the_worked_example() -> None:
    params = {"k3": "v3", "k1": "v1", "k2": "v2"}
    body = b'{"count":20,"page":1,"desc":"description"}'
    assert params_data(params, body) == 'k1v1k2v2k3v3{"count":20,"page":1,"desc":"description"}'
    assert signature("xxxxaaaxxxx", params, body, 1572574909697, "xxxappSecretxxx") == (
        "41a6685e7d044aeb864bd6b24d90614117c638f2d94627ea5dfe5c24746850de"
    )


@pytest.mark.parametrize("provider", sorted(SCENARIOS))
def test_every_row_gets_the_simulators_truth(provider: str) -> None:
    async def body(sim: Sim) -> None:
        org = "acme-corp" if provider != "enos" else "o15541858646501"
        scenario = SCENARIOS[provider](org)
        sim.seed(provider, scenario.records)
        spec = get_spec(provider)
        made = spec.make(sim.context(org, KEYS if provider == "enos" else TOKEN))
        seen: set[str] = set()
        for row, expected in zip(scenario.rows, scenario.expected, strict=True):
            values = dict(zip(scenario.header, [v or None for v in row], strict=True))
            try:
                target = spec.validate(values)
            except Exception:
                assert expected == "invalid", row
                continue
            key = spec.key(target)
            if key in seen:
                assert expected == "invalid"
                continue
            seen.add(key)
            result = await made.cancel(target, Once())
            assert result.outcome.value == expected, (row, result)
            if provider == "enos" and expected == "canceled":
                assert result.extra["n"] == len(result.extra["ids"]) >= 1

    with_sim(body)


def test_enos_device_wide_cancel_lists_every_canceled_command() -> None:
    async def body(sim: Sim) -> None:
        sc = enos("o1")
        sim.seed("enos", sc.records)
        made = get_spec("enos").make(sim.context("o1", KEYS))
        asset = sc.rows[4][0]
        result = await made.cancel({"asset_id": asset}, Once())
        expected = {r["command_id"] for r in sc.records if r["asset_id"] == asset}
        assert result.outcome is Outcome.CANCELED
        assert result.extra["n"] == 2 and set(result.extra["ids"]) == expected

    with_sim(body)


def test_enos_expired_token_is_renewed_once() -> None:
    async def body(sim: Sim) -> None:
        sc = enos("o1")
        sim.seed("enos", sc.records)
        context = sim.context("o1", KEYS)
        made = get_spec("enos").make(context)
        first = await made.cancel(
            {"asset_id": sc.rows[0][0], "command_id": sc.rows[0][3]}, target_calls()
        )
        assert first.outcome is Outcome.CANCELED
        sim.app[SIMULATOR].enos.tokens.expire_all()
        second = await made.cancel(
            {"asset_id": sc.rows[1][0], "command_id": sc.rows[1][3]}, target_calls()
        )
        assert second.outcome is Outcome.CANCELED
        routes = [r.route for r in sim.app[SIMULATOR].log.since(0)]
        assert routes.count("enos.token") == 2

    with_sim(body)


def test_enos_wrong_secret_is_unauthorized() -> None:
    async def body(sim: Sim) -> None:
        bad = EnosKeys(SecretStr("sim-access-key"), SecretStr("wrong"))
        with pytest.raises(Unauthorized):
            await get_spec("enos").make(sim.context("o1", bad)).cancel({"asset_id": "a1"}, Once())

    with_sim(body)


def test_applivery_bad_token_is_unauthorized() -> None:
    async def body(sim: Sim) -> None:
        made = get_spec("applivery-apple").make(
            sim.context("acme-corp", AppliveryToken(SecretStr("nope")))
        )
        with pytest.raises(Unauthorized) as info:
            await made.cancel(
                {"target_type": "device", "target_id": "X", "command_id": "a" * 24}, Once()
            )
        assert info.value.error_code == "4004"

    with_sim(body)


def test_wrong_base_url_is_misconfigured_not_not_found() -> None:
    async def body(sim: Sim) -> None:
        made = get_spec("applivery-apple").make(sim.context("acme-corp", TOKEN, sim.url + "/x"))
        with pytest.raises(Misconfigured):
            await made.cancel(
                {"target_type": "device", "target_id": "X", "command_id": "a" * 24}, Once()
            )

    with_sim(body)


def test_nobody_listening_is_unreachable() -> None:
    async def body(sim: Sim) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        made = get_spec("applivery-android").make(sim.context("acme-corp", TOKEN, dead))
        with pytest.raises(UnreachableError):
            await made.cancel({"device_id": "X", "command_id": "a" * 24}, Once())

    with_sim(body)


def test_429_carries_retry_after() -> None:
    async def body(sim: Sim) -> None:
        made = get_spec("applivery-android").make(sim.context("acme-corp", TOKEN))
        target = {"device_id": secrets.token_hex(12), "command_id": "a" * 24}
        assert (await made.cancel(target, Once())).outcome is Outcome.NOT_FOUND
        with pytest.raises(TransientError) as info:
            await made.cancel(target, Once())
        assert info.value.http_status == 429 and info.value.retry_after == 2

    with_sim(body, rate_limit=1, retry_after=2)


def test_5xx_is_transient() -> None:
    async def body(sim: Sim) -> None:
        made = get_spec("applivery-apple").make(sim.context("acme-corp", TOKEN))
        with pytest.raises(TransientError) as info:
            await made.cancel(
                {"target_type": "device", "target_id": "X", "command_id": "a" * 24}, Once()
            )
        assert info.value.http_status == 503

    with_sim(body, error_rate=1.0)


def test_enos_device_wide_repeat_cancels_nothing_queued_after_the_job() -> None:
    async def body(sim: Sim) -> None:
        sc = enos("o1")
        sim.seed("enos", sc.records)
        asset = sc.rows[4][0]
        submitted = 1_800_000_000_000
        later = {**next(r for r in sc.records if r["asset_id"] == asset),
                 "command_id": "1999999999999999999", "create_time": submitted + 1}  # fmt: skip
        sim.seed("enos", [later])
        made = get_spec("enos").make(sim.context("o1", KEYS, created=submitted))
        first = await made.cancel({"asset_id": asset}, Once())
        again = await made.cancel({"asset_id": asset}, Once())  # a redelivered chunk
        assert first.outcome is Outcome.CANCELED and first.extra["n"] == 2
        assert "1999999999999999999" not in first.extra["ids"]
        assert again.outcome is Outcome.NOTHING_PENDING
        store = sim.app[SIMULATOR].store
        cached = [r for r in store.enos if r.command_id == "1999999999999999999"]
        assert [r.state for r in cached] == [1]

    with_sim(body)


def test_windows_device_commands_reads_every_page() -> None:
    async def body(sim: Sim) -> None:
        from tests.scenarios import hex24

        device = hex24()
        action = {"cmd_id": "c1", "status": "Pending"}
        batches = [
            {"org": "acme-corp", "device_id": device, "command_id": hex24(), "actions": [action]}
            for _ in range(7)
        ]
        sim.seed("applivery-windows", batches)
        made = get_spec("applivery-windows").make(sim.context("acme-corp", TOKEN))
        listed = await made.device_commands(device, Once(), page_size=3)  # type: ignore[attr-defined]
        assert sorted(item["id"] for item in listed) == sorted(b["command_id"] for b in batches)

    with_sim(body)
