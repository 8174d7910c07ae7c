"""Logs: plain text by default, one JSON object per line with ``COUNTERMAND_LOG_FORMAT=json``.

structlog renders every record, ours and the libraries' (Celery, uvicorn) through the standard
``logging`` module, so one setting covers workers, beat and the API. A line about a job carries
its ``job_id``, and from a chunk run also ``chunk``, ``vendor`` and ``tenant``: ``bind_job``
puts them in the context of the coroutine (and the tasks it starts). Lifecycle events are
logged by the code that makes them happen: ``job submitted``, ``chunk started``, ``chunk done``,
``job paused``, ``job completed``. Secrets never reach a log: settings hold them as
``SecretStr``, and no message formats a credential or a key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(fmt: str = "text", level: int | str = logging.INFO) -> None:
    """Route every ``logging`` record through structlog, rendered as text or JSON lines."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_SHARED,
            structlog.stdlib.ExtraAdder(),  # logging's extra={"job_id": ...} becomes fields
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_broker_retries_as_info)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn (Celery's) become records too


def _broker_retries_as_info(record: logging.LogRecord) -> bool:
    """Celery's consumer warns once when it loses the broker ("Connection to broker lost"),
    then logs an error for every reconnect attempt: those are info lines here, so an outage is
    one warning per process (``countermand.store.outage`` for Countermand's own client)."""
    if record.name == "celery.worker.consumer.consumer" and str(record.msg).startswith(
        "consumer: Cannot connect to"
    ):
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


@contextmanager
def bind_job(**fields: object) -> Iterator[None]:
    """Add ``fields`` (job_id, chunk, vendor, tenant) to every log line of this context."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
