"""``countermand simulator``: parse options, build the config, serve until SIGINT or SIGTERM.

Registered by the main CLI as ``app.command("simulator")(simulator)``; ``python -m
countermand.simulator`` runs the same function through ``typer.run``. Once bound it prints one
line to stderr, ``simulator listening on http://HOST:PORT`` (the real port when ``--port 0``);
callers should still wait for ``GET /_sim/health``. Bad options exit with code 2.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvloop
from pydantic import ValidationError

from countermand.simulator.app import start
from countermand.simulator.config import SimulatorConfig
from countermand.simulator.state import StoreError


def simulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8080,
    seed: Annotated[int, typer.Option(help="Seed of generated commands and faults.")] = 1,
    devices: Annotated[int, typer.Option(help="Devices generated per provider.")] = 0,
    commands_per_device: Annotated[int, typer.Option(help="Commands per device.")] = 3,
    seed_file: Annotated[
        Path | None, typer.Option(help="JSON records per provider, as GET /_sim/commands.")
    ] = None,
    applivery_org: Annotated[str, typer.Option(help="Org of generated Applivery commands.")] = (
        "acme-corp"
    ),
    enos_org: Annotated[str, typer.Option(help="Org of generated EnOS commands.")] = (
        "o15541858646501"
    ),
    latency_ms: Annotated[float, typer.Option(help="Delay added to every vendor answer.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Extra random delay, 0 to this.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Fraction answered 503.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(help="Fraction held hang-seconds.")] = 0.0,
    hang_seconds: Annotated[
        float, typer.Option(help="How long a timeout hangs, and a stall stalls.")
    ] = 60.0,
    drop_rate: Annotated[float, typer.Option(help="Fraction closed without an answer.")] = 0.0,
    bad_gateway_rate: Annotated[
        float, typer.Option(help="Fraction answered a proxy's HTML 502 page (not applied).")
    ] = 0.0,
    malformed_rate: Annotated[
        float, typer.Option(help="Fraction applied, then answered JSON cut in half.")
    ] = 0.0,
    truncated_rate: Annotated[
        float, typer.Option(help="Fraction applied, then half the body sent and closed.")
    ] = 0.0,
    envelope_rate: Annotated[
        float, typer.Option(help="Fraction of 2xx applied, then in a gateway's JSON envelope.")
    ] = 0.0,
    stall_rate: Annotated[
        float, typer.Option(help="Fraction applied, then headers and a hang-seconds stall.")
    ] = 0.0,
    huge_rate: Annotated[
        float, typer.Option(help="Fraction applied, then padded to a 50 MiB body.")
    ] = 0.0,
    reset_rate: Annotated[
        float, typer.Option(help="Fraction applied, then half the body and a TCP reset.")
    ] = 0.0,
    rate_limit: Annotated[float, typer.Option(help="Requests/s per tenant; 0 = none.")] = 0.0,
    retry_after: Annotated[
        float | None, typer.Option(help="Retry-After of 429 answers, seconds; none by default.")
    ] = None,
    retry_after_format: Annotated[
        str, typer.Option(help="Retry-After as 'seconds' or 'http-date'.")
    ] = "seconds",
    android_cancel_done_rate: Annotated[
        float, typer.Option(help="Fraction of Android cancels that end DONE anyway.")
    ] = 0.0,
    cancel_stall_s: Annotated[
        float, typer.Option(help="Seconds an accepted cancel waits, store changed, to answer.")
    ] = 0.0,
    applivery_token: Annotated[str, typer.Option(help="Bearer token, any org.")] = (
        "sim-applivery-token"
    ),
    enos_access_key: Annotated[str, typer.Option(help="EnOS appKey.")] = "sim-access-key",
    enos_secret_key: Annotated[str, typer.Option(help="EnOS secret.")] = "sim-secret-key",
    enos_token_ttl: Annotated[int, typer.Option(help="EnOS token lifetime, seconds.")] = 7200,
    log_limit: Annotated[int, typer.Option(help="Request-log records kept.")] = 2_000_000,
) -> None:
    """Run the vendor API simulator (Applivery Apple/Android/Windows, EnOS) for tests and bench."""
    options = dict(locals())  # first statement: exactly the parameters, named as config fields
    host, port = options.pop("host"), options.pop("port")
    try:
        config = SimulatorConfig.model_validate(options)
    except ValidationError as exc:
        typer.echo(f"simulator: invalid options: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        uvloop.run(serve(config, host, port))
    except (StoreError, OSError) as exc:
        typer.echo(f"simulator: {exc}", err=True)
        raise typer.Exit(2) from exc


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    runner, bound = await start(config, host, port)
    # The simulator's clock is the judge of every rate test: a garbage collection that scans
    # every object stalls the loop, and the requests that arrive meanwhile are all timestamped
    # at its end, bunched as they were not sent (seen: 72 ms at 1,000 in flight). Objects alive
    # now, and the seeded commands (``control.add_commands``), are frozen out of collections.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    typer.echo(f"simulator listening on http://{host}:{bound}", err=True)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
