"""Applivery MDM, Apple: cancel one pending or retrying command of a device or device user.

``POST /v1/organizations/{org}/mdm/apple/enterprise/commands/{targetType}/{targetId}/``
``{admCommandId}/cancel``
answers 200 ``{"canceled": "OK"}`` (outcome ``canceled``), 5106 when the command is no longer
pending (``not_pending``), 3001/404 when unknown (``not_found``). A read (the same path without
``/cancel``) gives ``status`` and, for a canceled command, ``canceledAt``: the time that tells
whether this job's cancel took (``countermand.truth``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from countermand import states
from countermand.ids import APPLIVERY_COMMAND, APPLIVERY_TARGET, APPLIVERY_TARGET_TYPE, segment
from countermand.models import Outcome
from countermand.providers.applivery import (
    AppliveryBase,
    AppliveryClient,
    cancel_call,
    read_call,
    stale_commands,
)
from countermand.providers.base import (
    Call,
    CallResult,
    Column,
    Provider,
    ProviderContext,
    StaleQuery,
    Target,
)
from countermand.timeparse import parse_time

# The field holding the time a command reached its state, per state class.
STATE_TIME = {"canceled": "canceledAt", "done": "receivedAt", "errored": "receivedAt"}


class AppleSpec(AppliveryBase):
    name = "applivery-apple"
    columns: Sequence[Column] = (
        Column("target_id", APPLIVERY_TARGET),
        Column("command_id", APPLIVERY_COMMAND),
        Column("target_type", APPLIVERY_TARGET_TYPE, required=False, default="device"),
    )

    def key(self, target: Target) -> str:
        return f"{target['target_type']}/{target['target_id']}/{target['command_id'].lower()}"

    def make(self, context: ProviderContext) -> Provider:
        return AppleProvider(AppliveryClient(context))


class AppleProvider:
    def __init__(self, client: AppliveryClient) -> None:
        self._client = client

    def command_url(self, target: Target) -> str:
        return self._client.url(
            "apple/enterprise/commands",
            segment(target["target_type"]),
            segment(target["target_id"]),
            segment(target["command_id"]),
        )

    async def cancel(self, target: Target, call: Call) -> CallResult:
        url = self.command_url(target) + "/cancel"
        return await cancel_call(self._client, call, url, Outcome.CANCELED)

    async def read(self, target: Target, call: Call) -> CallResult:
        return await read_call(
            self._client, call, self.command_url(target), states.APPLE,
            lambda cls: STATE_TIME.get(cls, "sentAt"),
        )  # fmt: skip

    def stale(self, query: StaleQuery, call: Call) -> AsyncIterator[dict[str, str]]:
        """Pending or retrying commands of devices, older than the cutoff by ``createdAt``,
        else ``sentAt``; a command with neither is left alone (its age is unknown)."""

        def is_stale(item: Mapping[str, Any]) -> bool:
            created = parse_time(item.get("createdAt") or item.get("sentAt"))
            return (
                item.get("status") in ("Pending", "Retrying")
                and created is not None
                and created < query.cutoff
                and (query.command is None or item.get("requestType") == query.command)
            )

        def commands(device: str) -> str:
            return self._client.url("apple/enterprise/commands/device", segment(device), "grouped")

        async def rows() -> AsyncIterator[dict[str, str]]:
            found = stale_commands(self._client, call, "apple", commands, is_stale, query)
            async for device, item in found:
                yield {"target_id": device, "command_id": str(item.get("id")),
                       "target_type": "device"}  # fmt: skip

        return rows()
