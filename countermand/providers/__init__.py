"""Provider families behind one contract (``base.ProviderSpec`` / ``base.Provider``)."""

from countermand.errors import UsageError
from countermand.providers.applivery_android import AndroidSpec
from countermand.providers.applivery_apple import AppleSpec
from countermand.providers.applivery_windows import WindowsSpec
from countermand.providers.base import (
    CallResult,
    InvalidRow,
    Provider,
    ProviderContext,
    ProviderSpec,
)
from countermand.providers.enos import EnosSpec

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
    "CallResult",
    "InvalidRow",
    "Provider",
    "ProviderContext",
    "ProviderSpec",
    "get_spec",
]
