"""The store layer: every Redis key, script and command of Countermand lives here."""

from countermand.store.base import redis_client
from countermand.store.facade import Store
from countermand.store.jobs import JobMeta, NewJob, RetryAnswer, Row, job_info, outcome_of
from countermand.store.ledger import Batch, Ledger, Mark, Release, Released
from countermand.store.locks import FencedLock
from countermand.store.tenants import TenantState

__all__ = [
    "Batch",
    "FencedLock",
    "JobMeta",
    "Ledger",
    "Mark",
    "NewJob",
    "Release",
    "Released",
    "RetryAnswer",
    "Row",
    "Store",
    "TenantState",
    "job_info",
    "outcome_of",
    "redis_client",
]
