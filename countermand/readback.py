"""Reading a command back after a cancel: the redelivery race.

A worker that died after the API took its cancel leaves the target in flight; on redelivery
the second cancel hears "not pending" (Applivery 5106) or "nothing cached" (EnOS, by command
id), although the command was canceled by the first. When a target's earlier attempt may have
reached the API and the answer is one of those, the command is read: canceled means the cancel
took (``canceled``); anything else means it really was too late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from countermand.errors import TransientError
from countermand.limiter import Pacer
from countermand.models import Outcome
from countermand.providers import CallResult, Provider
from countermand.providers.base import Target
from countermand.retry import RetryPolicy

TOO_LATE = (Outcome.NOT_PENDING, Outcome.NOTHING_PENDING)
Nap = Callable[[float], Awaitable[None]]


def may_be_ours(call: CallResult, was_in_flight: bool, target: Target) -> bool:
    """Is this 'too late' answer possibly our own earlier cancel? (EnOS device-wide rows
    name no command to read.)"""
    return was_in_flight and call.outcome in TOO_LATE and "command_id" in target


async def resolve(
    provider: Provider,
    pacer: Pacer,
    policy: RetryPolicy,
    nap: Nap,
    target: Target,
    call: CallResult,
) -> CallResult:
    """The answer to record: ``canceled`` if the read shows the command canceled."""

    async def paced_read() -> CallResult:
        await pacer.wait_turn(nap)
        return await provider.read(target)

    try:
        read = await policy.run(paced_read, nap)
    except TransientError:
        return call  # cannot tell: keep what the vendor said
    status = read.extra.get("status")
    if read.outcome is Outcome.CANCELED:
        extra = {**call.extra, "status": status, "resolved": "canceled by an earlier attempt"}
        return CallResult(Outcome.CANCELED, read.http_status, None, None, extra)
    return CallResult(
        call.outcome, call.http_status, call.error_code, call.error_message,
        {**call.extra, "status": status},
    )  # fmt: skip
