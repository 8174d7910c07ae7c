"""The HTTP API and the dashboard (an interface: it calls the same core functions as the CLI)."""

from countermand.api.app import create_app

__all__ = ["create_app"]
