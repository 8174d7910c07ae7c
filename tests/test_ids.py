from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countermand.ids import (
    APPLIVERY_COMMAND,
    APPLIVERY_DEVICE,
    APPLIVERY_ORG,
    APPLIVERY_TARGET,
    ENOS_ID,
    MAX_ID_LENGTH,
    IdPattern,
    segment,
)

HEX24 = "507f1f77bcf86cd799439011"
# Not ASCII, though Unicode calls them letters or digits: \w without re.ASCII would take them.
NON_ASCII = [
    "\u00e9",
    "\uff41",
    "\u0663",
    "\u00df",
    "\u212a",
]  # é, fullwidth a, Arabic-Indic 3, ß, Kelvin


def test_the_cap_is_128() -> None:
    assert MAX_ID_LENGTH == 128


@pytest.mark.parametrize(
    "value",
    [HEX24, HEX24.upper(), "acme-corp", "abc", "a" * 127, "a" * 128, "a-" * 64, "9" * 25],
)
def test_org_accepts(value: str) -> None:
    assert APPLIVERY_ORG.check(value) is None


@pytest.mark.parametrize(
    "value",
    ["", "ab", "a" * 129, "acme corp", "acme\\corp", "acme_corp", "acme\n", "\nacme", "ácme"]
    + [f"ac{c}" for c in NON_ASCII],
)
def test_org_refuses(value: str) -> None:
    assert APPLIVERY_ORG.check(value) is not None


@pytest.mark.parametrize("pattern", [APPLIVERY_TARGET, APPLIVERY_DEVICE])
@pytest.mark.parametrize(
    "value", ["C02XK1ZJH7JY", "356938035643809", "a_b", "a", "_", HEX24, "x" * 127, "x" * 128]
)
def test_target_and_device_accept_words(pattern: IdPattern, value: str) -> None:
    assert pattern.check(value) is None


@pytest.mark.parametrize("pattern", [APPLIVERY_TARGET, APPLIVERY_DEVICE])
@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "C02X\n", "dévice", "a-b", "../x", "a b", " a", "a\t", "a\x00"]
    + [f"d{c}" for c in NON_ASCII],
)
def test_target_and_device_refuse_whole_value_ascii_only(pattern: IdPattern, value: str) -> None:
    assert pattern.check(value) is not None


@pytest.mark.parametrize("value", [HEX24, HEX24.upper(), "5f8d0d55b54764421b7156c1"])
def test_command_accepts_24_hex(value: str) -> None:
    assert APPLIVERY_COMMAND.check(value) is None


@pytest.mark.parametrize(
    "value",
    ["", HEX24[:-1], HEX24 + "0", HEX24 + "\n", "g" * 24, " " + HEX24[1:], "x" * 128]
    + [HEX24[:-1] + c for c in ["\u0663", "\uff10", "\u00e9"]],
)
def test_command_refuses_anything_but_24_hex(value: str) -> None:
    assert APPLIVERY_COMMAND.check(value) is not None


@pytest.mark.parametrize("value", ["o15541858646501", "!", "~", "a/b?c#d", "x" * 127, "x" * 128])
def test_enos_accepts_printable_ascii(value: str) -> None:
    assert ENOS_ID.check(value) is None


@pytest.mark.parametrize(
    "value",
    ["", "a b", "x" * 129, "a\n", "a\t", "a\x7f", "a\x00", " "] + [f"a{c}" for c in NON_ASCII],
)
def test_enos_refuses(value: str) -> None:
    assert ENOS_ID.check(value) is not None


@pytest.mark.parametrize(
    ("pattern", "cap"),
    [
        (APPLIVERY_ORG, "3-128"),
        (APPLIVERY_TARGET, "1-128"),
        (APPLIVERY_DEVICE, "1-128"),
        (ENOS_ID, "1-128"),
        (APPLIVERY_COMMAND, "24 hex digits"),
    ],
)
def test_descriptions_state_the_cap(pattern: IdPattern, cap: str) -> None:
    assert cap in pattern.description


def test_reason_for_a_huge_id_stays_short() -> None:
    reason = APPLIVERY_TARGET.check("D" * 100_000)
    assert reason == (
        f"target id {'D' * 40!r}... (100000 characters) is not 24 hex digits or a word of "
        "1-128 [A-Za-z0-9_]"
    )
    assert APPLIVERY_TARGET.check("a-b") == (
        "target id 'a-b' is not 24 hex digits or a word of 1-128 [A-Za-z0-9_]"
    )


def test_segment_encodes_everything_reserved() -> None:
    assert segment("a/b?c#d e") == "a%2Fb%3Fc%23d%20e"


@given(st.text(max_size=40) | st.text(alphabet="AZaz09_.~-/%é\n", max_size=12))
def test_segment_is_quote_whatever_the_value(value: str) -> None:
    """The fast path for unreserved ids gives exactly what ``quote`` gives."""
    assert segment(value) == quote(value, safe="")
