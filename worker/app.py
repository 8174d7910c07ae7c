"""The Celery app: configuration from ``countermand.settings``, nothing hard-coded.

Chunks never go through the broker: each pool process's runner claims them from Redis
(``countermand.runner``). The broker carries the scheduled work (cleanup slots, the retry sweep)
and the --verify passes. Reliability settings: late acks and ``reject_on_worker_lost`` so a task
whose process dies is delivered again; prefetch 1 so a worker holds only what it runs; results
are not stored (outcomes live in the job's own keys). The broker's visibility timeout stays
long (an hour): recovery from a dead host relies on chunk leases and fenced locks, not on it.
With Sentinel (``COUNTERMAND_REDIS_SENTINELS``) the broker is kombu's Sentinel transport and
RedBeat finds the master through the sentinels too; ``settings.redis`` spells both.

The task modules are named in ``include`` and loaded by the worker; producers send by name
(``countermand.dispatch``), so importing this app imports no task. The beat schedule is made
by ``countermand beat`` alone (``schedules``), so a bad policies file concerns beat only.
"""

from __future__ import annotations

from celery import Celery

from countermand.settings import get_settings
from countermand.store.keys import REDBEAT_PREFIX
from tasks.messages import Queue

TASK_MODULES = ["tasks.retries", "tasks.verify", "tasks.cleanup"]


def make_app() -> Celery:
    settings = get_settings()
    broker_url, broker_sentinel, broker_ssl = settings.redis.celery_broker()
    redbeat_url, redbeat_options, redbeat_ssl = settings.redis.redbeat()
    app = Celery("countermand", broker=broker_url, include=TASK_MODULES)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=Queue.CHUNKS.value,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            **broker_sentinel,
        },
        broker_connection_retry_on_startup=True,
        # On losing the broker, a running task with late ack is cancelled and delivered again
        # (Celery 6's default; our tasks are idempotent: fenced locks, recorded outcomes).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # COUNTERMAND_TASK_EVENTS: Celery's task events, so that Flower sees the tasks.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        worker_pool="prefork",
        beat_scheduler="schedules.scheduler:FailoverScheduler",  # RedBeat, surviving failovers
        redbeat_redis_url=redbeat_url,
        redbeat_redis_options=redbeat_options,
        redbeat_key_prefix=REDBEAT_PREFIX,
        redbeat_lock_timeout=max(30, int(settings.retry_sweep_interval * 5)),
        beat_max_loop_interval=max(1, int(settings.retry_sweep_interval)),
    )
    if broker_ssl is not None:  # Sentinel over TLS: kombu and RedBeat take it apart from the URL
        app.conf.update(broker_use_ssl=broker_ssl, redbeat_redis_use_ssl=redbeat_ssl)
    return app


app = make_app()

import worker.signals  # noqa: E402,F401 - connects the process wiring to this app
