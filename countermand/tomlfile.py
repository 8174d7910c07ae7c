"""Reading a TOML configuration file with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from countermand.errors import UsageError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The file's tables; an unreadable or malformed file is a usage error naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path}: {exc}") from exc
