"""Applivery MDM, Apple: cancel one pending or retrying command of a device or device user.

``POST /v1/organizations/{org}/mdm/apple/enterprise/commands/{targetType}/{targetId}/``
``{admCommandId}/cancel``
answers 200 ``{"canceled": "OK"}`` (outcome ``canceled``), 5106 when the command is no longer
pending (``not_pending``), 3001/404 when unknown (``not_found``).
"""

from __future__ import annotations

from collections.abc import Sequence

from countermand import states
from countermand.ids import APPLIVERY_COMMAND, APPLIVERY_TARGET, APPLIVERY_TARGET_TYPE, segment
from countermand.models import Outcome
from countermand.providers.applivery import AppliveryBase, AppliveryClient, cancel_call, read_call
from countermand.providers.base import (
    CallResult,
    Column,
    Provider,
    ProviderContext,
    Target,
)


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

    async def read(self, target: Target) -> CallResult:
        return await read_call(self._client, self.command_url(target), states.APPLE)
