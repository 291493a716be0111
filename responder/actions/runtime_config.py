"""Client of the platform's runtime-config admin API (runbook 3.3 and 5.5).

``GET/POST {base}/runtime-config/v1/features/{name}`` with a bearer token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from feedguard.core.retry_after import retry_after_of

from ..plugins import ActionError

# Another attempt cannot fix a bad token, a missing feature or a refused body.
_FINAL = frozenset({400, 401, 403, 404, 405, 409, 415, 422})
# The only server errors that may pass by themselves; any other 5xx (501 Not
# Implemented above all) is the API's final word.
TRANSIENT_5XX = frozenset({500, 502, 503, 504})
# A GET the API does not serve: answered to the caller, which decides what it means.
NOT_SERVED = frozenset({404, 405, 501})


def retryable(status: int) -> bool:
    """Whether another attempt may get another answer to this HTTP status: a passing
    server error, or a 4xx that is not the API's final word (408, 429 ...).  A 2xx
    with a body the caller cannot use is final: asking again gets the same."""
    if status < 400:
        return False
    if status >= 500:
        return status in TRANSIENT_5XX
    return status not in _FINAL


class RuntimeConfigClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | None,
        token: str | None,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") if base_url else None
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def url(self, feature: str) -> str:
        if self._base is None:
            raise ActionError(
                "runtime-config: actions.runtime_config.base_url is not set", retryable=False
            )
        return f"{self._base}/runtime-config/v1/features/{feature}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def get(self, feature: str) -> tuple[int, Any]:
        """(status, parsed body); the caller decides what a 404, 405 or 501 (the API
        does not serve this GET) means.  Any other 5xx, and a 429, raises (with the
        answer's Retry-After)."""
        return await self._request("GET", feature, None)

    async def check(self, feature: str) -> None:
        """The start-up check: one GET of the feature (the API answers and takes the
        token; a 404, 405 or 501 passes, read_cache copes with a feature it cannot read)."""
        await self.get(feature)

    async def set(self, feature: str, body: Mapping[str, Any]) -> Any:
        status, answer = await self._request("POST", feature, dict(body))
        if status >= 300:
            raise _error("POST", feature, status, answer)
        return answer

    async def _request(
        self, method: str, feature: str, body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        url = self.url(feature)
        try:
            async with self._session.request(
                method, url, json=body, headers=self._headers(), timeout=self._timeout
            ) as response:
                text = await response.text()
                try:
                    parsed: Any = await response.json(content_type=None) if text else None
                except ValueError:
                    parsed = text
                status = response.status
                retry_after = retry_after_of(status, response.headers)
                if status == 429 or (method == "GET" and status in (401, 403)):
                    raise _error(method, feature, status, parsed, retry_after)
                if status >= 500 and not (method == "GET" and status in NOT_SERVED):
                    raise _error(method, feature, status, parsed, retry_after)
                return status, parsed
        except TimeoutError as exc:
            raise ActionError(
                f"runtime-config: {method} feature {feature}: timed out", retryable=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise ActionError(
                f"runtime-config: {method} feature {feature}: {type(exc).__name__}: {exc}",
                retryable=True,
            ) from exc


def _error(
    method: str, feature: str, status: int, body: Any, retry_after: float | None = None
) -> ActionError:
    detail = body
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message") or body
    text = str(detail)[:300] if detail is not None else "no body"
    return ActionError(
        f"runtime-config: {method} feature {feature}: HTTP {status}: {text}",
        retryable=retryable(status),
        status=status,
        retry_after=retry_after,
    )
