"""The store layer: every Redis key, script and command of Countermand lives here."""

from countermand.store.base import redis_client
from countermand.store.facade import Store
from countermand.store.jobs import JobMeta, NewJob, RetryAnswer, Row, job_info, outcome_of
from countermand.store.ledger import Acquired, Batch, Ledger, Mark, Released
from countermand.store.locks import FencedLock
from countermand.store.tenants import TenantState

__all__ = [
    "Acquired",
    "Batch",
    "FencedLock",
    "JobMeta",
    "Ledger",
    "Mark",
    "NewJob",
    "Released",
    "RetryAnswer",
    "Row",
    "Store",
    "TenantState",
    "job_info",
    "outcome_of",
    "redis_client",
]
