"""The one error table: every code the simulator can send maps somewhere on purpose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from countermand.errors import (
    APPLIVERY,
    ENOS,
    RETRY_REFUSED,
    RETRY_UNCERTAIN,
    THROTTLED,
    TOKEN,
    VENDOR_CODES,
    Misconfigured,
    PlanNotAllowed,
    TokenExpired,
    TransientError,
    Unauthorized,
    Verdict,
    verdict,
)
from countermand.models import Outcome
from countermand.providers.base import settle
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
        source = "".join(path.read_text() for path in sorted(SIMULATOR.glob(f"{vendor}*.py")))
        found[vendor] = {int(code) for code in pattern.findall(source)}
        assert found[vendor], f"no error answers found in {vendor}*.py: pattern out of date"
        assert found[vendor] <= SENT_CODES[vendor]


@pytest.mark.parametrize(
    ("vendor", "status", "code", "envelope", "expected"),
    [
        (APPLIVERY, 400, 5106, True, Outcome.NOT_PENDING),
        (APPLIVERY, 404, 3001, True, Outcome.NOT_FOUND),
        (APPLIVERY, 400, 5050, True, PlanNotAllowed),
        (APPLIVERY, 401, 4004, True, Unauthorized),
        (APPLIVERY, 403, None, False, Unauthorized),
        (APPLIVERY, 404, None, False, Misconfigured),  # a proxy's or web server's bare 404
        (APPLIVERY, 302, None, False, Misconfigured),  # a redirect: the base URL is wrong
        (APPLIVERY, 400, None, False, Outcome.REJECTED),  # "Got more than 8190 bytes": one URL
        (APPLIVERY, 414, None, False, Outcome.REJECTED),
        (APPLIVERY, 431, None, False, Outcome.REJECTED),
        (APPLIVERY, 429, None, False, THROTTLED),
        (APPLIVERY, 408, None, False, RETRY_REFUSED),
        (APPLIVERY, 503, None, False, RETRY_UNCERTAIN),  # may have been applied
        (APPLIVERY, 502, None, False, RETRY_UNCERTAIN),  # a proxy's HTML page
        (APPLIVERY, 500, 9999, True, RETRY_UNCERTAIN),
        (APPLIVERY, 422, 9999, True, Outcome.REJECTED),
        (APPLIVERY, 404, 9999, True, Outcome.NOT_FOUND),
        (ENOS, 200, 1203, True, TOKEN),
        (ENOS, 401, 1002, True, Unauthorized),
        (ENOS, 200, 11404, True, Outcome.NOT_FOUND),
        (ENOS, 200, 12345, True, Outcome.REJECTED),
        (ENOS, 400, 1001, True, RETRY_REFUSED),  # a replayed timestamp: re-signed next try
        (ENOS, 200, 429, True, THROTTLED),  # throttling as an envelope code under HTTP 200
        (ENOS, 200, 1005, True, RETRY_UNCERTAIN),
    ],
)
def test_one_step_from_an_answer_to_a_verdict(
    vendor: str, status: int, code: int | None, envelope: bool, expected: Verdict
) -> None:
    assert verdict(vendor, status, code, envelope) == expected


def test_verdicts_are_carried_out_by_settle() -> None:
    assert settle(Outcome.NOT_FOUND, http_status=404, code=3001, message="gone").outcome is (
        Outcome.NOT_FOUND
    )
    with pytest.raises(TransientError) as caught:
        settle(THROTTLED, http_status=200, code=429, message="slow down", retry_after=2.0)
    assert caught.value.throttled and not caught.value.uncertain
    assert caught.value.retry_after == 2.0
    with pytest.raises(TransientError) as caught:
        settle(RETRY_UNCERTAIN, http_status=503, code=None, message="busy")
    assert caught.value.uncertain and not caught.value.throttled
    with pytest.raises(TokenExpired):
        settle(TOKEN, http_status=401, code=1203, message="expired")
    with pytest.raises(PlanNotAllowed):
        settle(PlanNotAllowed, http_status=400, code=5050, message="plan")
