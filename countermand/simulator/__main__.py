"""``python -m countermand.simulator``: the ``countermand simulator`` command on its own."""

import typer

from countermand.simulator.cli import simulator

typer.run(simulator)
