"""The one error table: every code the simulator can send maps somewhere on purpose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from countermand.errors import APPLIVERY, ENOS, VENDOR_CODES, Disposition, classify
from countermand.simulator.codes import SENT_CODES

SIMULATOR = Path(__file__).resolve().parent.parent / "countermand" / "simulator"


@pytest.mark.parametrize(
    ("vendor", "code"), [(v, c) for v, codes in SENT_CODES.items() for c in sorted(codes)]
)
def test_every_simulator_code_is_mapped(vendor: str, code: int) -> None:
    assert (vendor, code) in VENDOR_CODES, f"{vendor} {code} has no entry in VENDOR_CODES"


def test_simulator_sources_send_only_declared_codes() -> None:
    calls = {
        "applivery": re.compile(r"\berror\(\s*\d+\s*,\s*(\d+)"),
        "enos": re.compile(r"\b(?:gateway_error|_token_error|answer)\([^,()]*?,?\s*(\d{4,5})\b"),
    }
    found = {"applivery": set(), "enos": set()}  # type: dict[str, set[int]]
    for vendor, pattern in calls.items():
        source = (SIMULATOR / f"{vendor}.py").read_text()
        found[vendor] = {int(code) for code in pattern.findall(source)}
        assert found[vendor], f"no error answers found in {vendor}.py: pattern out of date"
        assert found[vendor] <= SENT_CODES[vendor]


@pytest.mark.parametrize(
    ("vendor", "status", "code", "envelope", "expected"),
    [
        (APPLIVERY, 400, 5106, True, Disposition.NOT_PENDING),
        (APPLIVERY, 404, 3001, True, Disposition.NOT_FOUND),
        (APPLIVERY, 400, 5050, True, Disposition.PLAN_NOT_ALLOWED),
        (APPLIVERY, 401, 4004, True, Disposition.UNAUTHORIZED),
        (APPLIVERY, 403, None, False, Disposition.UNAUTHORIZED),
        (APPLIVERY, 404, None, False, Disposition.MISCONFIGURED),  # a proxy's bare 404
        (APPLIVERY, 400, None, False, Disposition.MISCONFIGURED),  # an HTML error page
        (APPLIVERY, 429, None, False, Disposition.TRANSIENT),
        (APPLIVERY, 503, None, False, Disposition.TRANSIENT),
        (APPLIVERY, 500, 9999, True, Disposition.TRANSIENT),
        (APPLIVERY, 422, 9999, True, Disposition.REJECTED),
        (APPLIVERY, 404, 9999, True, Disposition.NOT_FOUND),
        (ENOS, 200, 1203, True, Disposition.TOKEN_EXPIRED),
        (ENOS, 401, 1002, True, Disposition.UNAUTHORIZED),
        (ENOS, 200, 11404, True, Disposition.NOT_FOUND),
        (ENOS, 200, 12345, True, Disposition.REJECTED),
        (ENOS, 400, 1001, True, Disposition.TRANSIENT),
    ],
)
def test_classify(
    vendor: str, status: int, code: int | None, envelope: bool, expected: Disposition
) -> None:
    assert classify(vendor, status, code, envelope) is expected
