"""Provider families behind one contract (``base.ProviderSpec`` / ``base.Provider``)."""

from countermand.errors import UsageError
from countermand.providers.applivery_android import AndroidSpec
from countermand.providers.applivery_apple import AppleSpec
from countermand.providers.applivery_windows import WindowsSpec
from countermand.providers.base import (
    Call,
    CallResult,
    Discovery,
    InvalidRow,
    Provider,
    ProviderContext,
    ProviderSpec,
    StaleQuery,
    Target,
)
from countermand.providers.enos import EnosSpec
from countermand.providers.factory import Wiring, discovery_for, provider_for

SPECS: dict[str, ProviderSpec] = {
    spec.name: spec for spec in (AppleSpec(), AndroidSpec(), WindowsSpec(), EnosSpec())
}


def get_spec(name: str) -> ProviderSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UsageError(
            f"unknown provider {name!r}: choose one of {', '.join(sorted(SPECS))}"
        ) from None


__all__ = [
    "SPECS",
    "Call",
    "CallResult",
    "Discovery",
    "InvalidRow",
    "Provider",
    "ProviderContext",
    "ProviderSpec",
    "StaleQuery",
    "Target",
    "Wiring",
    "discovery_for",
    "get_spec",
    "provider_for",
]
