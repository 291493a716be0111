"""Speaking to Airflow's stable REST API, both generations: which one a server is,
how to authenticate, and the typed errors a failed answer becomes.

Airflow 3 serves ``/api/v2`` and wants a bearer token from ``POST /auth/token``
(JSON username/password, answered 201); an expired token is answered 401
``Token Expired`` and a token signed by another instance's secret 403 ``Invalid
JWT token``, so on either the connection fetches one new token and retries once.
Airflow 2 serves ``/api/v1`` with basic auth and RFC 7807 problem bodies.

``AirflowApi`` is the connection ``airflow.AirflowClient`` builds its calls on
(DAGs, Variables, DAG runs).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from pydantic import Field, model_validator

from .errors import HttpAnswerError
from .retry_after import retry_after_of
from .schema import ConfigModel, HttpUrl, PositiveFloat, PositiveInt, Secret, read_secret

ApiVersion = Literal[2, 3]


class AirflowSettings(ConfigModel):
    enabled: bool = False
    base_url: HttpUrl = "http://127.0.0.1:8080"
    # "auto" asks the server (GET /api/v2/monitor/health, then /api/v1/health).
    # Ints are accepted because YAML and FEEDGUARD_AIRFLOW_VERSION=3 give ints.
    version: Literal["auto", "2", "3", 2, 3] = "auto"
    username: str = "admin"
    password: Secret = Field(None, description="prefer FEEDGUARD_AIRFLOW_PASSWORD or password_file")
    password_file: str | None = None
    timeout_seconds: PositiveFloat = 5.0
    # DAG collector: runs per DAG in the shared batch window (newest start first,
    # at most 100 in all) and in a DAG's own runs request when the window misses it.
    runs_window: PositiveInt = 25
    concurrency: PositiveInt = 8

    @model_validator(mode="after")
    def _password_when_enabled(self) -> AirflowSettings:
        if self.enabled and not self.password and not self.password_file:
            raise ValueError(
                "password: Airflow is enabled but no password is set"
                " (FEEDGUARD_AIRFLOW_PASSWORD or airflow.password_file)"
            )
        return self

    @property
    def api_version(self) -> ApiVersion | None:
        """2 or 3 when configured, None for auto-detection."""
        if self.version == "auto":
            return None
        return 3 if str(self.version) == "3" else 2

    def read_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "airflow password")


# --- errors -------------------------------------------------------------------


class AirflowError(HttpAnswerError):
    """An answer from Airflow that is not a success, or no answer at all (status 0)."""


class AirflowNotFound(AirflowError):
    """404: no such DAG or DAG run."""


class AirflowConflict(AirflowError):
    """409: a DAG run with that id or logical date exists already."""


class AirflowAuthError(AirflowError):
    """401/403 that a fresh token (Airflow 3) did not cure, or bad credentials."""


class AirflowUnavailable(AirflowError):
    """Connection refused, timeout or a 5xx: Airflow is not answering usefully."""


# --- the connection -----------------------------------------------------------


def _detail(status: int, body: bytes) -> str:
    """The useful part of an error body: Airflow 3 ``detail``, Airflow 2 problem JSON."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return text[:300] or f"HTTP {status}"
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        for key in ("detail", "title", "error", "message"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return text[:300] or f"HTTP {status}"


def _error(status: int, detail: str, retry_after: float | None = None) -> AirflowError:
    if status == 404:
        return AirflowNotFound(status, detail)
    if status == 409:
        return AirflowConflict(status, detail)
    if status in (401, 403):
        return AirflowAuthError(status, detail)
    if status >= 500:
        return AirflowUnavailable(status, detail, retry_after)
    return AirflowError(status, detail, retry_after)


class AirflowApi:
    """The connection to one Airflow instance: its API version (configured or asked
    once), its auth (the token kept and fetched again once when refused) and requests."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: AirflowSettings,
        password: str | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._password = password if password is not None else settings.read_password()
        self._version: ApiVersion | None = settings.api_version
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        self._version_lock = asyncio.Lock()
        # Per request; callers bound a whole operation with asyncio.timeout().
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        credentials = f"{settings.username}:{self._password or ''}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode("ascii")

    @property
    def base_url(self) -> str:
        return self._base

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        body: Any = None,
    ) -> tuple[int, bytes, float | None]:
        """(status, body, the Retry-After of a 429 or 503 in seconds)."""
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers={"Accept": "application/json", **(headers or {})},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return response.status, body, retry_after_of(response.status, response.headers)
        except TimeoutError as exc:
            raise AirflowUnavailable(0, f"{method} {url}: no answer within the timeout") from exc
        except aiohttp.ClientError as exc:
            raise AirflowUnavailable(0, f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def version(self) -> ApiVersion:
        """2 or 3: configured, or asked once (health endpoints need no auth)."""
        if self._version is not None:
            return self._version
        async with self._version_lock:
            # Concurrent first calls (the collector sends two at once) ask once.
            if self._version is None:
                self._version = await self._detect_version()
            return self._version

    async def _detect_version(self) -> ApiVersion:
        status, _, _ = await self._send("GET", f"{self._base}/api/v2/monitor/health")
        if status == 200:
            return 3
        status2, body2, retry_after = await self._send("GET", f"{self._base}/api/v1/health")
        if status2 == 200:
            return 2
        if status >= 500 or status2 >= 500:
            raise AirflowUnavailable(max(status, status2), _detail(status2, body2), retry_after)
        raise AirflowError(
            status2,
            f"{self._base} answers neither /api/v2/monitor/health ({status})"
            f" nor /api/v1/health ({status2}): not an Airflow 2 or 3 API server?",
        )

    async def _fetch_token(self) -> str:
        if not self._password:
            raise AirflowAuthError(0, "no Airflow password configured (airflow.password_file)")
        status, body, retry_after = await self._send(
            "POST",
            f"{self._base}/auth/token",
            body={"username": self._settings.username, "password": self._password},
        )
        if status not in (200, 201):
            raise _error(status, f"token request failed: {_detail(status, body)}", retry_after)
        try:
            token = json.loads(body)["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AirflowError(status, "token answer has no access_token") from exc
        return str(token)

    async def _bearer(self, stale: str | None = None) -> str:
        async with self._token_lock:
            # Concurrent callers that all saw the same stale token fetch one new one.
            if self._token is None or self._token == stale:
                self._token = await self._fetch_token()
            return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
    ) -> Any:
        """Call ``/api/v{1,2}`` + path; parsed JSON or a typed AirflowError."""
        version = await self.version()
        prefix = "/api/v2" if version == 3 else "/api/v1"
        url = f"{self._base}{prefix}{path}"

        async def send(authorization: str) -> tuple[int, bytes, float | None]:
            headers = {"Authorization": authorization}
            return await self._send(method, url, headers=headers, params=params, body=body)

        if version == 2:
            status, raw, retry_after = await send(self._basic)
        else:
            token = await self._bearer()
            status, raw, retry_after = await send(f"Bearer {token}")
            if status in (401, 403):
                # Expired (401) or signed by a previous instance's secret (403): once.
                token = await self._bearer(stale=token)
                status, raw, retry_after = await send(f"Bearer {token}")
        if not 200 <= status < 300:
            raise _error(status, _detail(status, raw), retry_after)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise AirflowError(status, f"{method} {path}: answer is not JSON") from exc

    async def check(self) -> ApiVersion:
        """What the first call would otherwise pay for: the version (asked once), a
        token (Airflow 3) and one authenticated read, over the pooled session."""
        await self.request("GET", "/dags", params={"limit": "1"})
        return await self.version()


__all__ = [
    "AirflowApi",
    "AirflowAuthError",
    "AirflowConflict",
    "AirflowError",
    "AirflowNotFound",
    "AirflowSettings",
    "AirflowUnavailable",
    "ApiVersion",
]
