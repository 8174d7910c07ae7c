"""Celery wiring: the app, the per-process async bridge, process signals."""
