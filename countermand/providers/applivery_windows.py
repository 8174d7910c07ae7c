"""Applivery MDM, Windows: poll only (no cancel endpoint is documented).

A command is a batch of SyncML actions. A read fetches the batch
(``GET .../windows/enterprise/devices/{winDeviceId}/commands/{winCommandId}``, with its status
summary) and every page of its actions (``.../actions``); each action's status maps to a state
class (``countermand.states.WINDOWS``) and the batch's outcome follows ``states.batch_class``.
The report keeps the summary and every action (cmdId, path, action, status, statusCode,
sentAt, receivedAt, canceledAt) as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from countermand import states
from countermand.errors import UsageError
from countermand.ids import APPLIVERY_COMMAND, APPLIVERY_DEVICE, segment
from countermand.models import Outcome
from countermand.providers.applivery import (
    AppliveryBase,
    AppliveryClient,
    ListError,
    all_pages,
    error_result,
    success_data,
)
from countermand.providers.base import Call, CallResult, Column, Provider, ProviderContext, Target


class WindowsSpec(AppliveryBase):
    name = "applivery-windows"
    can_cancel = False
    can_discover = False
    columns: Sequence[Column] = (
        Column("device_id", APPLIVERY_DEVICE),
        Column("command_id", APPLIVERY_COMMAND),
    )
    extra_columns: Sequence[str] = ("vendor_status", "summary", "actions")

    def key(self, target: Target) -> str:
        return f"{target['device_id']}/{target['command_id'].lower()}"

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        return [
            str(extra.get("status") or ""),
            json.dumps(extra["summary"]) if "summary" in extra else "",
            json.dumps(extra["actions"]) if "actions" in extra else "",
        ]

    def make(self, context: ProviderContext) -> Provider:
        return WindowsProvider(AppliveryClient(context))


class WindowsProvider:
    def __init__(self, client: AppliveryClient) -> None:
        self._client = client

    def command_url(self, target: Target) -> str:
        return self._client.url(
            "windows/enterprise/devices",
            segment(target["device_id"]),
            "commands",
            segment(target["command_id"]),
        )

    async def cancel(self, target: Target, call: Call) -> CallResult:
        raise UsageError("Applivery Windows commands cannot be canceled; poll them")

    async def device_commands(self, device_id: str, call: Call, page_size: int = 100) -> list[Any]:
        """Every command batch of a device (``GET .../devices/{winDeviceId}/commands``, newest
        first, all pages)."""
        url = self._client.url("windows/enterprise/devices", segment(device_id), "commands")
        try:
            return await all_pages(self._client, call, url, page_size)
        except ListError as failed:
            raise UsageError(f"Windows device {device_id}: {failed.result.error_message}") from None

    async def read(self, target: Target, call: Call) -> CallResult:
        """The batch, then every page of its actions: each page one request of the call path."""
        url = self.command_url(target)

        async def batch_read() -> CallResult | Any:
            resp = await self._client.request("GET", url)
            if not 200 <= resp.status < 300:
                return error_result(resp)
            return success_data(resp)

        batch = await call(batch_read, kind="read")
        if isinstance(batch, CallResult):
            return batch
        try:
            items = await all_pages(self._client, call, url + "/actions")
        except ListError as failed:
            return failed.result
        actions = [action_record(item) for item in items if isinstance(item, dict)]
        outcome = states.batch_class(states.classify(states.WINDOWS, a["status"]) for a in actions)
        summary = batch.get("summary", []) if isinstance(batch, dict) else []
        statuses = sorted({a["status"] for a in actions})
        return CallResult(
            Outcome(outcome.value),
            200,
            extra={"status": ",".join(statuses), "summary": summary, "actions": actions},
        )


def action_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """One action, as the report keeps it (timestamps as the vendor wrote them)."""
    config = item.get("config") if isinstance(item.get("config"), dict) else {}
    assert isinstance(config, dict)
    return {
        "cmdId": item.get("cmdId"),
        "path": config.get("path"),
        "action": config.get("action"),
        "status": str(item.get("status") or ""),
        "statusCode": item.get("statusCode"),
        "sentAt": item.get("sentAt"),
        "receivedAt": item.get("receivedAt"),
        "canceledAt": item.get("canceledAt"),
    }
