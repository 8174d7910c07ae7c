"""The Lua scripts in ``countermand/lua``: each state change of a job is one atomic script.

``_lib.lua`` holds shared helpers and is prepended to the scripts that use them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

NAMES = (
    "acquire",
    "begin",
    "dedup",
    "finalize",
    "limiter",
    "reclaim",
    "record",
    "release",
    "renew",
    "reserve",
    "retry",
    "throttle",
    "transition",
    "verify",
)
_USES_LIB = frozenset({"begin", "record", "finalize", "transition", "retry", "verify"})


@cache
def source(name: str) -> str:
    folder = resources.files("countermand") / "lua"
    text = (folder / f"{name}.lua").read_text(encoding="utf-8")
    if name in _USES_LIB:
        text = (folder / "_lib.lua").read_text(encoding="utf-8") + "\n" + text
    return text


class Scripts:
    """The scripts registered on one client (sync or asyncio: ``register_script`` on either)."""

    def __init__(self, client: Any) -> None:
        for name in NAMES:
            setattr(self, name, client.register_script(source(name)))

    acquire: Any
    begin: Any
    dedup: Any
    finalize: Any
    limiter: Any
    reclaim: Any
    record: Any
    release: Any
    renew: Any
    reserve: Any
    retry: Any
    throttle: Any
    transition: Any
    verify: Any
