"""One vocabulary for Python and Lua: no script spells a key prefix or a status; every script
loads on the Redis server the tests use."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import redis

from countermand.models import JobStatus, StopReason
from countermand.store import keys
from countermand.store.lua import NAMES, header, source

FOLDER = resources.files("countermand.store") / "lua"
FILES = sorted(p.name for p in FOLDER.iterdir() if p.name.endswith(".lua"))
WORDS = [s.value for s in JobStatus] + [r.value for r in StopReason]


@pytest.mark.parametrize("name", FILES)
def test_no_lua_file_spells_a_key_or_a_status(name: str) -> None:
    text = (FOLDER / name).read_text()
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())  # comments aside
    assert f"{keys.PREFIX}:" not in text
    for word in WORDS:
        assert not re.search(rf"['\"]{word}['\"]", code), f"{name} spells {word!r}"


def test_every_script_file_is_registered() -> None:
    assert sorted(f"{n}.lua" for n in NAMES) == [f for f in FILES if f != "_lib.lua"]


def test_the_header_names_every_status_and_global_key() -> None:
    text = header()
    for status in JobStatus:
        assert f"{status.value} = '{status.value}'" in text
    for name in (keys.JOBS, keys.ACTIVE, keys.RETRY_DUE, keys.VERIFY_DUE, keys.EVENTS):
        assert f"'{name}'" in text


@pytest.mark.parametrize("name", NAMES)
def test_every_script_compiles_on_redis(redis_url: str, name: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.script_load(source(name))
    finally:
        client.close()
