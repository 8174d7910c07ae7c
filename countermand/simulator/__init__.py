"""The bundled vendor API simulator (Applivery Apple/Android/Windows, EnOS) for tests, demo and
bench."""

from countermand.simulator.app import SIMULATOR, Simulator, build_app, start
from countermand.simulator.client import SimulatorClient, SimulatorError
from countermand.simulator.config import SimulatorConfig
from countermand.simulator.enos import encryption, params_data, signature
from countermand.simulator.state import ANDROID, APPLE, ENOS, PROVIDERS, WINDOWS

__all__ = [
    "ANDROID",
    "APPLE",
    "ENOS",
    "PROVIDERS",
    "SIMULATOR",
    "WINDOWS",
    "Simulator",
    "SimulatorClient",
    "SimulatorConfig",
    "SimulatorError",
    "build_app",
    "encryption",
    "params_data",
    "signature",
    "start",
]
