"""Celery wiring: the app and the process signals."""
