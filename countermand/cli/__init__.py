"""The ``countermand`` command. It parses and delegates: all logic lives in the core modules.

Exit codes (a contract): 0 success; 1 ``submit --wait`` ended paused or aborted; 2 usage or
configuration error; 3 Redis unreachable. Messages go to stderr; stdout carries only what a
script parses (a job id, a JSON object or array, a report, a new API key).
"""

from countermand.cli import admin, cleanup, jobs, processes
from countermand.cli.common import app, status_object


def main() -> None:
    app()


__all__ = ["admin", "app", "cleanup", "jobs", "main", "processes", "status_object"]
