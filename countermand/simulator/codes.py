"""Every vendor error code the simulator can send, declared in one place.

The answer helpers refuse an undeclared code, and ``tests/test_errors.py`` checks that each
declared code has an entry in ``countermand.errors.VENDOR_CODES``: a new simulator answer
cannot slip past the client's error table.
"""

from __future__ import annotations

SENT_CODES: dict[str, frozenset[int]] = {
    "applivery": frozenset({3001, 3002, 4002, 4004, 5106}),
    "enos": frozenset({1001, 1002, 1003, 1004, 1202, 1203, 11404}),
}


def declared(vendor: str, code: int) -> int:
    if code not in SENT_CODES[vendor]:
        raise AssertionError(f"simulator code {vendor} {code} is not declared in SENT_CODES")
    return code
