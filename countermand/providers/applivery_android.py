"""Applivery MDM, Android: cancel one command of a device.

``POST /v1/organizations/{org}/mdm/android/enterprise/devices/{emmDeviceId}/commands/``
``{emmCommandId}/cancel``.
Android commands wrap Google's Android Management operations, whose cancel is best effort: a 200
means the cancel was accepted, not that it took, so the outcome is ``cancel_requested``. A read
gives ``status`` and ``updatedAt``, the time of the command's last change (``countermand.truth``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from countermand import states
from countermand.ids import APPLIVERY_COMMAND, APPLIVERY_DEVICE, segment
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


class AndroidSpec(AppliveryBase):
    name = "applivery-android"
    columns: Sequence[Column] = (
        Column("device_id", APPLIVERY_DEVICE),
        Column("command_id", APPLIVERY_COMMAND),
    )

    def key(self, target: Target) -> str:
        return f"{target['device_id']}/{target['command_id'].lower()}"

    def make(self, context: ProviderContext) -> Provider:
        return AndroidProvider(AppliveryClient(context))


class AndroidProvider:
    def __init__(self, client: AppliveryClient) -> None:
        self._client = client

    def command_url(self, target: Target) -> str:
        return self._client.url(
            "android/enterprise/devices",
            segment(target["device_id"]),
            "commands",
            segment(target["command_id"]),
        )

    async def cancel(self, target: Target, call: Call) -> CallResult:
        url = self.command_url(target) + "/cancel"
        return await cancel_call(self._client, call, url, Outcome.CANCEL_REQUESTED)

    async def read(self, target: Target, call: Call) -> CallResult:
        return await read_call(
            self._client, call, self.command_url(target), states.ANDROID, lambda _: "updatedAt"
        )

    def stale(self, query: StaleQuery, call: Call) -> AsyncIterator[dict[str, str]]:
        """PENDING commands created before the cutoff (and of type ``command``, if given)."""

        def is_stale(item: Mapping[str, Any]) -> bool:
            meta = (item.get("config") or {}).get("metadata") or {}
            created = parse_time(item.get("createdAt") or meta.get("createTime"))
            kind = meta.get("type") or (item.get("_config") or {}).get("metadata", {}).get("type")
            return (
                item.get("status") == "PENDING"
                and created is not None
                and created < query.cutoff
                and (query.command is None or kind == query.command)
            )

        def commands(device: str) -> str:
            return self._client.url("android/enterprise/devices", segment(device), "commands")

        async def rows() -> AsyncIterator[dict[str, str]]:
            found = stale_commands(self._client, call, "android", commands, is_stale, query)
            async for device, item in found:
                yield {"device_id": device, "command_id": str(item.get("id"))}

        return rows()
