"""Every Redis key Countermand writes, in one place (Python and, through a generated header,
the Lua scripts: ``countermand.store.lua``).

A job's keys share the hash tag ``{job_id}`` so each job's multi-key scripts stay in one slot.

===============================  ======  =====================================================
key                              type    holds
===============================  ======  =====================================================
cm:jobs                          zset    job id -> created_at (``jobs`` lists newest first)
cm:jobs:active                   set     ids of queued/running jobs (the reclaimer scans these)
cm:reclaim                       string  lock: one reclaimer pass per interval across all hosts
cm:retry:due                     zset    job id -> when its next --auto-retry round is due
cm:verify:due                    zset    job id -> when its --verify reads are due
cm:epoch                         hash    the Redis server's run id, and when it last changed
cm:events                        pubsub  "<job id> <status>" when a job stops (pause, abort)
cm:work                          pubsub  "<job id>" when chunks become ready to claim
cm:runners                       zset    runner id -> until when it is alive (ms): who claims
cm:claim:<owner token>           string  "<job id>|<chunk>" that claim took (a lease's life), so
                                         a claim retried after its answer was lost takes no other
cm:redbeat:*                     -       Celery beat schedule and its lock (RedBeat)
cm:cleanup:<policy>:<minute>     string  a scheduled cleanup slot: a fenced lock, then "done"
cm:cleanup:<policy>:last         string  the policy's latest cleanup job id
cm:job:{id}                      hash    job meta, status, counters (``n:<code>``, ``done``)
cm:job:{id}:in:<chunk>           string  the chunk's input rows, compact JSON
cm:job:{id}:res:<bucket>         hash    target index -> encoded result (``BUCKET`` per hash)
cm:job:{id}:open                 set     chunks with targets not yet final
cm:job:{id}:ready                zset    open chunks nobody holds, to be claimed (by number)
cm:job:{id}:failed               set     indices of targets whose outcome is ``failed``
cm:job:{id}:verify               set     indices of targets awaiting a --verify read
cm:job:{id}:verifier             string  lock: one verify pass of the job at a time
cm:job:{id}:leases               zset    chunk -> lease expiry (ms, Redis clock)
cm:job:{id}:owners               hash    chunk -> owner token of the lease
cm:job:{id}:dedup:<n>            set     64-bit row hashes, only while ``submit`` runs
cm:rl:<vendor>:<org>             hash    tenant limiter: GCRA arrival time, 429 hold, effective
                                         rate, tokens spent
cm:rl:job:{id}                   string  GCRA theoretical arrival time of one job (µs)
cm:share:<vendor>:<org>          hash    job id -> "priority|rate|active until µs|share|bound":
                                         sharing the tenant's rate (limiter.lua)
cm:apikeys                       hash    API key id -> JSON {name, role, orgs, digest, created}
cm:apikeys:names                 hash    API key name -> key id
cm:session:<id>                  hash    a dashboard session: key id, CSRF token (expires)
cm:idem:<key name>:<key>         string  the job an Idempotency-Key created (24 hours)
cm:audit                         stream  actions: actor, action, job, parameters (retention)
cm:webhooks:due                  zset    "<job>|<event>|<n>" -> when to (re)send the webhook
cm:webhooks:tries                hash    webhook event -> tries so far
===============================  ======  =====================================================
"""

from __future__ import annotations

PREFIX = "cm"

JOBS = f"{PREFIX}:jobs"
ACTIVE = f"{PREFIX}:jobs:active"
RECLAIM_LOCK = f"{PREFIX}:reclaim"
RETRY_DUE = f"{PREFIX}:retry:due"
VERIFY_DUE = f"{PREFIX}:verify:due"
EPOCH = f"{PREFIX}:epoch"
EVENTS = f"{PREFIX}:events"
WORK = f"{PREFIX}:work"
RUNNERS = f"{PREFIX}:runners"
REDBEAT_PREFIX = f"{PREFIX}:redbeat:"

# Results are kept in small hashes of BUCKET targets: under Redis's default
# hash-max-listpack-entries (128) a hash stays a compact listpack (~20-40 bytes per target).
BUCKET = 128
DEDUP_BUCKETS = 8192

# Suffixes of a job's keys after ``job(id)``; the Lua header gets the same table.
SUFFIXES = {
    "input": ":in:",
    "results": ":res:",
    "open": ":open",
    "ready": ":ready",
    "failed": ":failed",
    "verify": ":verify",
    "verifier": ":verifier",
    "leases": ":leases",
    "owners": ":owners",
    "dedup": ":dedup:",
}


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{{{job_id}}}"


def chunk_input(job_id: str, chunk: int) -> str:
    return f"{job(job_id)}{SUFFIXES['input']}{chunk}"


def results_prefix(job_id: str) -> str:
    return f"{job(job_id)}{SUFFIXES['results']}"


def results(job_id: str, bucket: int) -> str:
    return f"{results_prefix(job_id)}{bucket}"


def bucket_of(index: int) -> int:
    return index // BUCKET


def claimed(owner: str) -> str:
    return f"{PREFIX}:claim:{owner}"


def open_chunks(job_id: str) -> str:
    return job(job_id) + SUFFIXES["open"]


def ready(job_id: str) -> str:
    return job(job_id) + SUFFIXES["ready"]


def failed(job_id: str) -> str:
    return job(job_id) + SUFFIXES["failed"]


def to_verify(job_id: str) -> str:
    return job(job_id) + SUFFIXES["verify"]


def verifier(job_id: str) -> str:
    return job(job_id) + SUFFIXES["verifier"]


def leases(job_id: str) -> str:
    return job(job_id) + SUFFIXES["leases"]


def owners(job_id: str) -> str:
    return job(job_id) + SUFFIXES["owners"]


def dedup_prefix(job_id: str) -> str:
    return job(job_id) + SUFFIXES["dedup"]


def dedup(job_id: str, n: int) -> str:
    return f"{dedup_prefix(job_id)}{n}"


def cleanup_slot(policy: str, minute: int) -> str:
    return f"{PREFIX}:cleanup:{policy}:{minute}"


def cleanup_last(policy: str) -> str:
    return f"{PREFIX}:cleanup:{policy}:last"


def tenant_rate(vendor: str, org: str) -> str:
    return f"{PREFIX}:rl:{vendor}:{org}"


def job_rate(job_id: str) -> str:
    return f"{PREFIX}:rl:job:{{{job_id}}}"


def tenant_shares(vendor: str, org: str) -> str:
    """The jobs sharing a tenant's rate, and the share each was granted last."""
    return f"{PREFIX}:share:{vendor}:{org}"


def chunk_keys(job_id: str) -> list[str]:
    """The keys a chunk's lease scripts take, in their order: meta, open, leases, owners,
    ready."""
    return [job(job_id), open_chunks(job_id), leases(job_id), owners(job_id), ready(job_id)]


def all_job_keys(job_id: str, chunks: int, total: int) -> list[str]:
    """Every key a job of ``chunks`` chunks and ``total`` targets may have written."""
    names = [job(job_id), open_chunks(job_id), ready(job_id), leases(job_id), owners(job_id)]
    names.append(job_rate(job_id))
    names += [failed(job_id), to_verify(job_id), verifier(job_id)]
    names += [chunk_input(job_id, c) for c in range(chunks)]
    names += [results(job_id, b) for b in range(bucket_of(max(total - 1, 0)) + 1)]
    return names


# --- the operator surface (HTTP API, audit, webhooks) ------------------------------------------
API_KEYS = f"{PREFIX}:apikeys"  # hash: key id -> JSON {name, role, orgs, digest, created}
API_KEY_NAMES = f"{PREFIX}:apikeys:names"  # hash: key name -> key id
AUDIT = f"{PREFIX}:audit"  # stream: who did what, when (retention: AUDIT_RETENTION_DAYS)
WEBHOOKS_DUE = f"{PREFIX}:webhooks:due"  # zset: "<job id>|<event>|<n>" -> when to (re)send
WEBHOOK_TRIES = f"{PREFIX}:webhooks:tries"  # hash: event member -> tries so far


def session(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}"  # hash {key id, csrf}, expires


def idempotency(principal: str, key: str) -> str:
    return f"{PREFIX}:idem:{principal}:{key}"  # string: the job id a POST created (24 h)
