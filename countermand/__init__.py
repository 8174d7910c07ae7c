"""Countermand: async bulk cancellation of pending device-management commands."""

__all__ = ["__version__"]

__version__ = "0.1.0"
