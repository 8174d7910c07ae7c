"""Making a job's provider on this process: its base URL, the org's credential, the process's
vendor transport. The one place the engine, verify and cleanup get a provider from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from countermand.credentials import CredentialStore
from countermand.errors import Misconfigured, Unauthorized, UsageError
from countermand.providers.base import Discovery, Provider, ProviderContext, ProviderSpec
from countermand.providers.transport import Timeouts, Transport
from countermand.settings import Settings


@dataclass(slots=True)
class Wiring:
    """What a process lends its providers."""

    settings: Settings
    credentials: CredentialStore
    transport: Transport
    timeout: Timeouts
    shared: dict[Any, Any]


def provider_for(
    spec: ProviderSpec, org: str, wiring: Wiring, job_created_ms: int | None = None
) -> Provider:
    """The provider for ``org``. Raises ``JobStop`` (the job pauses) when this process has no
    base URL or no credential for it."""
    base_url = spec.base_url(wiring.settings)
    if not base_url:
        raise Misconfigured(f"no base URL configured for {spec.name} on this worker")
    try:
        credential = wiring.credentials.require(spec.vendor, org)
    except UsageError as exc:
        raise Unauthorized(f"on this worker: {exc}") from exc
    settings = wiring.settings
    return spec.make(
        ProviderContext(
            transport=wiring.transport,
            org=org,
            base_url=base_url,
            credential=credential,
            timeout=wiring.timeout,
            token_margin=settings.token_refresh_margin,
            shared=wiring.shared,
            job_created_ms=job_created_ms,
            max_answer_bytes=settings.max_answer_bytes,
        )
    )


def discovery_for(spec: ProviderSpec, org: str, wiring: Wiring) -> Discovery:
    """The provider of a stale-cleanup policy; a family without discovery is a usage error."""
    provider = provider_for(spec, org, wiring) if spec.can_discover else None
    if not isinstance(provider, Discovery):
        raise UsageError(f"{spec.name} has no stale discovery (it has no cancel)")
    return provider
