"""Assemble the simulator: store, gate, vendor routes and control routes in one aiohttp app.

``build_app`` is synchronous and does no I/O beyond reading ``seed_file``; ``start`` binds it
(``port=0``: a free port, returned) without an access log, so that a benchmark's 100,000
requests cost no console output. The parts stay reachable in process as ``app[SIMULATOR]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from countermand.simulator.applivery import Applivery
from countermand.simulator.config import ConfigHolder, SimulatorConfig
from countermand.simulator.control import Control
from countermand.simulator.enos import Enos
from countermand.simulator.faults import Gate, RequestLog
from countermand.simulator.lists import AppliveryLists
from countermand.simulator.seeding import generate
from countermand.simulator.state import PROVIDERS, CommandStore, load_seed_file
from countermand.simulator.windows import Windows


@dataclass(frozen=True, slots=True)
class Simulator:
    holder: ConfigHolder
    store: CommandStore
    log: RequestLog
    gate: Gate
    enos: Enos


SIMULATOR = web.AppKey("simulator", Simulator)
MAX_BODY = 256 * 1024 * 1024  # POST /_sim/commands may carry a large batch


def seeded_store(config: SimulatorConfig) -> CommandStore:
    """The generated records, then the seed file's (raises StoreError on a bad file)."""
    store = CommandStore()
    generated = generate(
        config.seed,
        config.devices,
        config.commands_per_device,
        config.applivery_org,
        config.enos_org,
    )
    loaded = load_seed_file(config.seed_file) if config.seed_file is not None else {}
    for provider in PROVIDERS:
        store.add(provider, generated[provider])
        store.add(provider, loaded.get(provider, []))
    return store


def build_app(config: SimulatorConfig) -> web.Application:
    holder = ConfigHolder(config)
    store = seeded_store(config)
    log = RequestLog(config.log_limit)
    gate = Gate(holder, log, config.seed)
    applivery = Applivery(holder, store, config.seed)
    enos = Enos(holder, store)
    control = Control(holder, store, log, enos.tokens)
    app = web.Application(client_max_size=MAX_BODY)
    vendor = [  # the lists first: Apple's .../{targetId}/grouped must not reach the Apple read
        *AppliveryLists(applivery).routes(gate),
        *applivery.routes(gate),
        *Windows(applivery).routes(gate),
        *enos.routes(gate),
    ]
    app.add_routes([*vendor, *control.routes()])
    app[SIMULATOR] = Simulator(holder, store, log, gate, enos)
    return app


async def start(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve ``build_app(config)``; returns the runner (``await runner.cleanup()``) and port."""
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return runner, int(bound[1])
