"""A small synchronous client of the simulator's ``/_sim/*`` control routes, for tests, the demo
and the benchmark. Standard library only (urllib), and it ignores proxy environment variables:
the simulator is local, and an ``http_proxy`` must not capture its traffic.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener


class SimulatorError(RuntimeError):
    """The simulator answered a control call with an error (the message has its reason)."""


class SimulatorClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = build_opener(ProxyHandler({}))

    def health(self) -> bool:
        """True when the simulator answers; False when it cannot be reached (yet)."""
        try:
            return bool(self._call("GET", "/_sim/health").get("ok"))
        except (OSError, SimulatorError):
            return False

    def wait_ready(self, deadline_s: float = 10.0) -> None:
        """Wait up to ``deadline_s`` seconds for ``health()``; TimeoutError when it never comes."""
        give_up = time.monotonic() + deadline_s
        while not self.health():
            if time.monotonic() >= give_up:
                raise TimeoutError(f"simulator at {self.base_url} not ready in {deadline_s}s")
            time.sleep(0.05)

    def config(self, **changes: Any) -> dict[str, Any]:
        """The running config; with keyword arguments, change those runtime fields first."""
        if changes:
            return dict(self._call("POST", "/_sim/config", body=changes))
        return dict(self._call("GET", "/_sim/config"))

    def requests(self, since: int = 0, route: str | None = None) -> dict[str, Any]:
        """``{"total": N, "requests": [...]}`` from log index ``since``, of one route if given."""
        params: dict[str, Any] = {"since": since}
        if route is not None:
            params["route"] = route
        return dict(self._call("GET", "/_sim/requests", params=params))

    def reset_requests(self) -> None:
        self._call("POST", "/_sim/requests/reset")

    def stats(self, window: float = 1.0) -> dict[str, Any]:
        return dict(self._call("GET", "/_sim/stats", params={"window": window}))

    def commands(self, provider: str) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sim/commands", params={"provider": provider}))

    def add_commands(
        self, provider: str, records: list[dict[str, Any]], replace: bool = False
    ) -> int:
        body = {"provider": provider, "records": records, "replace": replace}
        return int(self._call("POST", "/_sim/commands", body=body)["added"])

    def expire_enos_tokens(self) -> int:
        return int(self._call("POST", "/_sim/enos/expire-tokens")["expired"])

    def _call(
        self, method: str, path: str, *, body: object = None, params: dict[str, Any] | None = None
    ) -> Any:
        url = self.base_url + path + ("?" + urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        request = Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise SimulatorError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
