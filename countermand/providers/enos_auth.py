"""EnOS API Management auth: an access token per application, a signature per request.

* Token: ``POST {gateway}/apim-token-service/v2.0/token/get`` with ``appKey``, ``timestamp`` (ms)
  and ``encryption = sha256_hex(appKey + timestamp + secret)``. Fetched once per process and
  application, cached until ``token_margin`` seconds before it expires (one fetch at a time).
* Each call carries ``apim-accesstoken``, ``apim-timestamp`` and
  ``apim-signature = sha256_hex(token + paramsData + timestamp + secret)``; paramsData is the
  query parameters sorted by name, written ``name value`` with no separators, then the exact
  body text. Timestamps are unique per process (a replayed one is refused with 1001) and every
  try is signed afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from countermand.credentials import EnosKeys
from countermand.errors import ENOS, Misconfigured, Retry, TransientError, Unauthorized, verdict
from countermand.ids import segment
from countermand.providers.base import ProviderContext
from countermand.providers.http import Response, exchange

TOKEN_PATH = "/apim-token-service/v2.0/token/get"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def params_data(params: Mapping[str, str], body: bytes | None = None) -> str:
    text = "".join(f"{name}{params[name]}" for name in sorted(params))
    return text + (body.decode("utf-8") if body else "")


def signature(
    token: str, params: Mapping[str, str], body: bytes | None, ts: int, secret: str
) -> str:
    return sha256_hex(f"{token}{params_data(params, body)}{ts}{secret}")


def url_with_query(url: str, params: Mapping[str, str]) -> str:
    return url + "?" + "&".join(f"{segment(k)}={segment(v)}" for k, v in params.items())


class _Clock:
    """Millisecond timestamps that never repeat within this process."""

    last = 0

    @classmethod
    def next_ms(cls) -> int:
        cls.last = max(int(time.time() * 1000), cls.last + 1)
        return cls.last


def signed_headers(
    token: str, keys: EnosKeys, params: Mapping[str, str], body: bytes | None
) -> dict[str, str]:
    ts = _Clock.next_ms()
    secret = keys.secret_key.get_secret_value()
    headers = {
        "apim-accesstoken": token,
        "apim-timestamp": str(ts),
        "apim-signature": signature(token, params, body, ts, secret),
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers


@dataclass
class TokenSource:
    context: ProviderContext
    keys: EnosKeys
    token: str | None = None
    expires_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def shared(cls, context: ProviderContext) -> TokenSource:
        """The process-wide source for this gateway and application key."""
        assert isinstance(context.credential, EnosKeys)
        keys = context.credential
        cache_key = ("enos-token", context.base_url, keys.access_key.get_secret_value())
        source = context.shared.get(cache_key)
        if not isinstance(source, TokenSource) or source.keys != keys:
            source = cls(context, keys)
            context.shared[cache_key] = source
        source.context = context  # the latest session and timeouts
        return source

    async def get(self, *, refresh: bool = False) -> str:
        stale = self.token
        async with self.lock:
            if (
                self.token is None
                or time.monotonic() >= self.expires_at
                or (refresh and self.token == stale)
            ):
                self.token, lifetime = await self._fetch()
                margin = min(self.context.token_margin, lifetime / 2)
                self.expires_at = time.monotonic() + lifetime - margin
            return self.token

    async def _fetch(self) -> tuple[str, float]:
        ctx = self.context
        app_key = self.keys.access_key.get_secret_value()
        ts = _Clock.next_ms()
        body = json.dumps(
            {
                "appKey": app_key,
                "encryption": sha256_hex(f"{app_key}{ts}{self.keys.secret_key.get_secret_value()}"),
                "timestamp": ts,
            },
            separators=(",", ":"),
        ).encode()
        try:
            resp = await exchange(
                ctx.transport,
                "POST",
                f"{ctx.base_url}{TOKEN_PATH}",
                headers={"Content-Type": "application/json"},
                timeout=ctx.timeout,
                data=body,
                max_bytes=ctx.max_answer_bytes,
            )
        except TransientError as exc:  # the command itself was not sent
            exc.uncertain = False
            raise
        answer = resp.json()
        status = answer.get("status", answer.get("code")) if isinstance(answer, dict) else None
        if not isinstance(status, int):
            raise _not_a_token_answer(resp)
        data = answer.get("data") if status == 0 else None
        if isinstance(data, dict) and isinstance(data.get("accessToken"), str):
            return data["accessToken"], float(data.get("expire") or 7200)
        message = f"cannot fetch an EnOS access token: {status} {answer.get('msg')!r}"
        found = verdict(ENOS, resp.status, status, True)
        if isinstance(found, Retry):
            raise TransientError(
                message,
                http_status=resp.status,
                error_code=str(status),
                retry_after=resp.retry_after,
                uncertain=False,
                throttled=found.throttled,
            )
        raise Unauthorized(message, http_status=resp.status, error_code=str(status))


def _not_a_token_answer(resp: Response) -> Exception:
    """An answer without the token service's envelope: a web page at a 2xx, or a 4xx other than
    the credentials', proves the base URL wrong; a 5xx or a malformed 2xx is retried."""
    if 200 <= resp.status < 300:
        problem = resp.not_the_vendor("EnOS token service")
    else:
        found = verdict(ENOS, resp.status, None, False)
        message = f"token endpoint HTTP {resp.status}: {resp.snippet()!r}"
        if isinstance(found, Retry):
            problem = TransientError(message, http_status=resp.status)
        elif isinstance(found, type) and issubclass(found, (Unauthorized, Misconfigured)):
            return found(message, http_status=resp.status)
        else:
            return Misconfigured(message, http_status=resp.status)
    if isinstance(problem, TransientError):
        problem.uncertain = False  # the command itself was not sent
    return problem
