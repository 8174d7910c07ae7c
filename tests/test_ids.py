import pytest

from countermand.ids import (
    APPLIVERY_COMMAND,
    APPLIVERY_ORG,
    APPLIVERY_TARGET,
    ENOS_ID,
    segment,
)


@pytest.mark.parametrize("value", ["507f1f77bcf86cd799439011", "acme-corp", "abc"])
def test_org_accepts(value: str) -> None:
    assert APPLIVERY_ORG.check(value) is None


@pytest.mark.parametrize("value", ["ab", "acme corp", "acme\\corp", "acme\n", "ácme"])
def test_org_refuses(value: str) -> None:
    assert APPLIVERY_ORG.check(value) is not None


@pytest.mark.parametrize("value", ["C02XK1ZJH7JY", "356938035643809", "a_b"])
def test_target_accepts_words(value: str) -> None:
    assert APPLIVERY_TARGET.check(value) is None


@pytest.mark.parametrize("value", ["C02X\n", "dévice", "a-b", "../x", ""])
def test_target_refuses_whole_value_ascii_only(value: str) -> None:
    assert APPLIVERY_TARGET.check(value) is not None


def test_command_is_24_hex() -> None:
    assert APPLIVERY_COMMAND.check("5f8d0d55b54764421b7156c1") is None
    assert APPLIVERY_COMMAND.check("5f8d0d55b54764421b7156c") is not None
    assert APPLIVERY_COMMAND.check("5f8d0d55b54764421b7156c1\n") is not None


def test_enos_ids_printable_ascii_without_spaces() -> None:
    assert ENOS_ID.check("o15541858646501") is None
    assert ENOS_ID.check("a b") is not None
    assert ENOS_ID.check("x" * 129) is not None
    assert ENOS_ID.check("") is not None


def test_segment_encodes_everything_reserved() -> None:
    assert segment("a/b?c#d e") == "a%2Fb%3Fc%23d%20e"
