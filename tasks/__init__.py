"""Thin Celery tasks over the core (``countermand``)."""
