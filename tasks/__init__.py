"""Thin Celery tasks over the core (``countermand``): names and messages in ``messages``."""
