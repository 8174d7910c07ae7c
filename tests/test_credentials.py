from __future__ import annotations

from pathlib import Path

import pytest

from countermand.credentials import AppliveryToken, CredentialStore, EnosKeys
from countermand.errors import UsageError
from countermand.settings import Settings


def store(tmp_path: Path, text: str, **env: str) -> tuple[CredentialStore, Path]:
    path = tmp_path / "credentials.toml"
    path.write_text(text)
    return CredentialStore(Settings(_env_file=None, credentials_file=path, **env)), path


def test_file_wins_for_its_orgs_and_env_covers_the_rest(tmp_path: Path) -> None:
    creds, _ = store(
        tmp_path,
        '[applivery.acme]\ntoken = "file-token"\n[enos.o1]\naccess_key = "a"\nsecret_key = "s"\n',
        applivery_token="env-token",
    )
    acme = creds.get("applivery", "acme")
    other = creds.get("applivery", "other")
    assert isinstance(acme, AppliveryToken) and acme.token.get_secret_value() == "file-token"
    assert isinstance(other, AppliveryToken) and other.token.get_secret_value() == "env-token"
    assert isinstance(creds.get("enos", "o1"), EnosKeys)
    assert creds.get("enos", "o2") is None


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    creds, path = store(tmp_path, '[applivery.acme]\ntoken = "old"\n')
    assert creds.require("applivery", "acme").token.get_secret_value() == "old"  # type: ignore[union-attr]
    path.write_text('[applivery.acme]\ntoken = "new-token"\n')
    assert creds.require("applivery", "acme").token.get_secret_value() == "new-token"  # type: ignore[union-attr]


def test_missing_credential_names_the_variables(tmp_path: Path) -> None:
    creds, path = store(tmp_path, "")
    with pytest.raises(UsageError) as info:
        creds.require("enos", "o9")
    assert "COUNTERMAND_ENOS_ACCESS_KEY" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[applivery.acme\n", "credentials.toml"),
        ("[applivery.acme]\ntoken = 3\n", "[applivery.acme] needs a non-empty string 'token'"),
        ('[enos.o1]\naccess_key = "a"\n', "[enos.o1] needs a non-empty string 'secret_key'"),
        ('[jamf.x]\ntoken = "t"\n', "unknown table"),
    ],
)
def test_bad_files_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    creds, _ = store(tmp_path, text)
    with pytest.raises(UsageError, match=None) as info:
        creds.get("applivery", "acme")
    assert message in str(info.value)
