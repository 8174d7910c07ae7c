"""Credentials per (vendor, org): a credentials file for many orgs, the environment for one.

The file is TOML, its path ``COUNTERMAND_CREDENTIALS_FILE``::

    [applivery.acme-corp]            # org id or slug
    token = "..."

    [enos.o15541858646501]
    access_key = "..."
    secret_key = "..."

An org found in the file uses the file's credential; any other org falls back to the
environment (``COUNTERMAND_APPLIVERY_TOKEN``, ``COUNTERMAND_ENOS_ACCESS_KEY`` and
``COUNTERMAND_ENOS_SECRET_KEY``). The file is re-read when its modification time or size
changes, or it is replaced (checked with one ``stat`` whenever a chunk starts), so a fixed
credential needs no worker restart.
Credentials live only in process memory: never in Redis, messages, logs or reports.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from countermand.errors import UsageError
from countermand.settings import Settings
from countermand.tomlfile import read_toml


@dataclass(frozen=True, slots=True)
class AppliveryToken:
    token: SecretStr


@dataclass(frozen=True, slots=True)
class EnosKeys:
    access_key: SecretStr
    secret_key: SecretStr


Credential = AppliveryToken | EnosKeys


class CredentialStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._path = settings.credentials_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._file: dict[tuple[str, str], Credential] = {}

    def get(self, vendor: str, org: str) -> Credential | None:
        from_file = self._from_file().get((vendor, org))
        return from_file if from_file is not None else self._from_env(vendor)

    def require(self, vendor: str, org: str) -> Credential:
        credential = self.get(vendor, org)
        if credential is None:
            where = f" or in {self._path}" if self._path else ""
            names = {
                "applivery": "COUNTERMAND_APPLIVERY_TOKEN",
                "enos": "COUNTERMAND_ENOS_ACCESS_KEY and COUNTERMAND_ENOS_SECRET_KEY",
            }.get(vendor, f"a {vendor} credential")
            raise UsageError(f"no {vendor} credential for org {org!r}: set {names}{where}")
        return credential

    def file_entries(self) -> list[tuple[str, str]]:
        """(vendor, org) of every credential in the file."""
        return sorted(self._from_file())

    def _from_env(self, vendor: str) -> Credential | None:
        s = self._settings
        if vendor == "applivery" and s.applivery_token:
            return AppliveryToken(s.applivery_token)
        if vendor == "enos" and s.enos_access_key and s.enos_secret_key:
            return EnosKeys(s.enos_access_key, s.enos_secret_key)
        return None

    def _from_file(self) -> dict[tuple[str, str], Credential]:
        if self._path is None:
            return {}
        with self._lock:
            try:
                st = os.stat(self._path)
            except FileNotFoundError as exc:
                raise UsageError(f"credentials file {self._path} does not exist") from exc
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                self._file = load_credentials_file(self._path)
                self._stamp = stamp
            return self._file


def load_credentials_file(path: Path) -> dict[tuple[str, str], Credential]:
    data = read_toml(path, "credentials file")
    result: dict[tuple[str, str], Credential] = {}
    for org, entry in _table(path, data, "applivery").items():
        token = _field(path, f"applivery.{org}", entry, "token")
        result[("applivery", org)] = AppliveryToken(SecretStr(token))
    for org, entry in _table(path, data, "enos").items():
        where = f"enos.{org}"
        result[("enos", org)] = EnosKeys(
            SecretStr(_field(path, where, entry, "access_key")),
            SecretStr(_field(path, where, entry, "secret_key")),
        )
    unknown = set(data) - {"applivery", "enos"}
    if unknown:
        raise UsageError(f"credentials file {path}: unknown table(s) {sorted(unknown)}")
    return result


def _table(path: Path, data: dict[str, object], name: str) -> dict[str, dict[str, object]]:
    table = data.get(name, {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise UsageError(f"credentials file {path}: [{name}] must hold one table per org")
    return table


def _field(path: Path, where: str, entry: dict[str, object], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise UsageError(f"credentials file {path}: [{where}] needs a non-empty string {name!r}")
    return value


def usable_vendors(settings: Settings, store: CredentialStore | None = None) -> list[str]:
    """The vendors this process can talk to: a base URL and at least one credential (in the
    environment or the credentials file)."""
    creds = store or CredentialStore(settings)
    in_file = {vendor for vendor, _ in creds.file_entries()}
    usable = []
    if settings.applivery_url and (settings.applivery_token or "applivery" in in_file):
        usable.append("applivery")
    enos_env = settings.enos_access_key and settings.enos_secret_key
    if settings.enos_url and (enos_env or "enos" in in_file):
        usable.append("enos")
    return usable


NO_VENDOR = (
    "no vendor is configured on this process: set COUNTERMAND_APPLIVERY_TOKEN (Applivery, base "
    "URL COUNTERMAND_APPLIVERY_URL), or COUNTERMAND_ENOS_URL with COUNTERMAND_ENOS_ACCESS_KEY and "
    "COUNTERMAND_ENOS_SECRET_KEY (EnOS), or put per-org credentials in "
    "COUNTERMAND_CREDENTIALS_FILE"
)
