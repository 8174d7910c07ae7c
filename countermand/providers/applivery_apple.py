"""Applivery MDM, Apple: cancel one pending or retrying command of a device or device user.

``POST /v1/organizations/{org}/mdm/apple/enterprise/commands/{targetType}/{targetId}/``
``{admCommandId}/cancel``
answers 200 ``{"canceled": "OK"}`` (outcome ``canceled``), 5106 when the command is no longer
pending (``not_pending``), 3001/404 when unknown (``not_found``).
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
    CallResult,
    Column,
    Provider,
    ProviderContext,
    Target,
)
from countermand.timeparse import parse_time


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

    async def cancel(self, target: Target) -> CallResult:
        url = self.command_url(target) + "/cancel"
        return await cancel_call(self._client, url, Outcome.CANCELED)

    async def stale(
        self, cutoff: float, command: str | None, page_size: int, devices: list[str] | None
    ) -> AsyncIterator[dict[str, str]]:
        """Pending or retrying commands of devices, older than ``cutoff`` by ``createdAt``,
        else ``sentAt``; a command with neither is left alone (its age is unknown)."""

        def is_stale(item: Mapping[str, Any]) -> bool:
            created = parse_time(item.get("createdAt") or item.get("sentAt"))
            return (
                item.get("status") in ("Pending", "Retrying")
                and created is not None
                and created < cutoff
                and (command is None or item.get("requestType") == command)
            )

        def commands(device: str) -> str:
            path = ("apple/enterprise/commands/device", segment(device), "grouped")
            return self._client.url(*path)

        async for device, item in stale_commands(
            self._client, "apple", commands, is_stale, page_size, devices
        ):
            yield {"target_id": device, "command_id": str(item.get("id")), "target_type": "device"}

    async def read(self, target: Target) -> CallResult:
        return await read_call(self._client, self.command_url(target), states.APPLE)
