"""``redacted_url``: the one helper through which a Redis URL reaches a message or a log. Every
form of password redis-py reads is hidden, whatever the URL looks like; the rest stays as
written, so a message still says where."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import redis

from countermand.settings import redacted_url

PW = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        (f"redis://:{PW}@h:6379/0", "redis://:***@h:6379/0"),
        (f"redis://default:{PW}@h:6379/2", "redis://default:***@h:6379/2"),
        (f"rediss://u:{PW}@h/0?ssl_cert_reqs=none", "rediss://u:***@h/0?ssl_cert_reqs=none"),
        (f"redis://:{quote(PW + '/+@', safe='')}@h:1/0", "redis://:***@h:1/0"),
        (f"redis://:{PW}@[::1]:6380/0", "redis://:***@[::1]:6380/0"),  # brackets kept
        (f"redis://h:6379/0?password={PW}", "redis://h:6379/0?password=***"),
        (f"unix:///run/redis.sock?db=1&password={PW}", "unix:///run/redis.sock?db=1&password=***"),
        (f"redis://h/0?ssl_password={PW}&db=3#x", "redis://h/0?ssl_password=***&db=3#x"),
        (f"redis://:{PW}@h:notaport/0", "redis://:***@h:notaport/0"),  # malformed: no raise
        (f"redis://:{PW}/x@h:6379/0", "redis://:***@h:6379/0"),  # '/' unquoted: hidden whole
        (f"redis://user@h:6379/0?token={PW}", "redis://user@h:6379/0?token=***"),
        ("redis://user@h:6379/0", "redis://user@h:6379/0"),  # a user alone is no secret
        ("", ""),
    ],
)
def test_passwords_are_hidden_and_the_rest_kept(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
    assert PW not in redacted_url(url) and quote(PW, safe="") not in redacted_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PW}@h:6379/0",
        f"redis://someone:{PW}@h:6379/0",
        f"redis://h:6379/0?password={PW}",
        f"unix:///tmp/r.sock?password={PW}",
    ],
)
def test_every_password_redis_py_reads_is_hidden(url: str) -> None:
    """The forms are the ones redis-py takes a password from: the helper hides each."""
    pool = redis.ConnectionPool.from_url(url)
    assert pool.connection_kwargs["password"] == PW  # redis-py would send it
    assert PW not in redacted_url(url)
