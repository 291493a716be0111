"""An async client of Airflow's stable REST API, both generations.

Airflow 3 serves ``/api/v2`` and wants a bearer token from ``POST /auth/token``
(JSON username/password, answered 201); an expired token is answered 401
``Token Expired`` and a token signed by another instance's secret 403 ``Invalid
JWT token``, so on either the client fetches one new token and retries once.
Airflow 2 serves ``/api/v1`` with basic auth and RFC 7807 problem bodies.

The exporter's DAG collector and the responder's runbook actions share this
client; it raises typed errors and leaves turning them into metrics or HTTP
answers to its callers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

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


# --- models -------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """Airflow's ISO 8601 timestamps (``...Z`` or ``+00:00``); None stays None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@dataclass(frozen=True)
class DagInfo:
    dag_id: str
    is_paused: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DagInfo:
        return cls(dag_id=str(data["dag_id"]), is_paused=bool(data.get("is_paused")))


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    dag_run_id: str
    state: str
    run_type: str
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    conf: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DagRun:
        conf = data.get("conf")
        return cls(
            dag_id=str(data.get("dag_id", "")),
            dag_run_id=str(data["dag_run_id"]),
            state=str(data.get("state") or ""),
            run_type=str(data.get("run_type") or ""),
            # Airflow 2 before 2.2 only has execution_date.
            logical_date=parse_time(data.get("logical_date") or data.get("execution_date")),
            start_date=parse_time(data.get("start_date")),
            end_date=parse_time(data.get("end_date")),
            conf=conf if isinstance(conf, dict) else {},
        )

    @property
    def start_timestamp(self) -> float | None:
        return epoch(self.start_date)

    @property
    def end_timestamp(self) -> float | None:
        return epoch(self.end_date)


@dataclass(frozen=True)
class RunPage:
    """One page of a runs listing; ``total_entries`` counts every match (None: not said)."""

    runs: list[DagRun]
    total_entries: int | None

    @property
    def complete(self) -> bool:
        return self.total_entries is not None and self.total_entries <= len(self.runs)


def common_substring(names: Sequence[str]) -> str:
    """The longest substring every name contains ("" if none): a narrowing
    ``dag_id_pattern`` for Airflow 2, which has no OR."""
    return _common_substring(tuple(names))


@functools.lru_cache(maxsize=64)  # the same catalog every scrape
def _common_substring(names: tuple[str, ...]) -> str:
    if not names:
        return ""
    shortest = min(names, key=len)
    for size in range(len(shortest), 0, -1):
        for start in range(len(shortest) - size + 1):
            part = shortest[start : start + size]
            if all(part in name for name in names):
                return part
    return ""


# --- client -------------------------------------------------------------------


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


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        # Airflow 3 rejects naive datetimes with 422; say so before sending.
        raise ValueError(f"logical_date must be timezone-aware, got {value.isoformat()}")
    return value.isoformat()


class AirflowClient:
    """One Airflow instance. Share one per process; it keeps the token and version."""

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

    # -- plumbing --

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

    # -- DAGs --

    async def get_dag(self, dag_id: str) -> DagInfo:
        data = await self.request("GET", f"/dags/{quote(dag_id, safe='')}")
        return DagInfo.from_json(data)

    async def list_dags(self, dag_ids: Sequence[str]) -> dict[str, DagInfo]:
        """The named DAGs that exist, in as few requests as the server allows.

        One id is asked for by itself. For more, the DAG list is read with a
        ``dag_id_pattern`` (a case-insensitive substring match, so it may return
        more; filtered exactly here): Airflow 3.1+ reads ``|`` as OR, so one
        pattern names every DAG; Airflow 2 has no OR, so it gets the longest
        substring all the ids share, if any, and the list is paged while that
        costs fewer requests than asking per DAG. When the whole matching list
        was read, an id not in it does not exist and costs nothing more;
        otherwise it is asked for by itself (which also keeps servers without
        the OR syntax correct).
        """
        wanted = list(dict.fromkeys(dag_ids))
        found: dict[str, DagInfo] = {}
        if not wanted:
            return found
        version = await self.version()
        complete = False
        if len(wanted) > 1:
            params: dict[str, Any] = {}
            if version == 3:
                params["dag_id_pattern"] = "|".join(wanted)
                max_pages = 10
            else:
                common = common_substring(wanted)
                if common:
                    params["dag_id_pattern"] = common
                max_pages = len(wanted) - 1
            offset = pages = 0
            while pages < max_pages and len(found) < len(wanted):
                page = await self.request(
                    "GET", "/dags", params={**params, "limit": 100, "offset": offset}
                )
                pages += 1
                dags = page.get("dags") or []
                for item in dags:
                    if item.get("dag_id") in wanted:
                        found[item["dag_id"]] = DagInfo.from_json(item)
                offset += len(dags)
                if not dags or offset >= int(page.get("total_entries") or 0):
                    complete = True
                    break
            # A server that took "a|b" literally (Airflow 3.0) matches no DAG at
            # all: absence is proven only by a list that returned some of them.
            if version == 3 and not found:
                complete = False
        missing = [] if complete else [d for d in wanted if d not in found]
        results = await asyncio.gather(*(self.get_dag(d) for d in missing), return_exceptions=True)
        for dag_id, result in zip(missing, results, strict=True):
            if isinstance(result, DagInfo):
                found[dag_id] = result
            elif not isinstance(result, AirflowNotFound):
                raise result
        return found

    async def set_paused(self, dag_id: str, paused: bool) -> DagInfo:
        data = await self.request(
            "PATCH",
            f"/dags/{quote(dag_id, safe='')}",
            params={"update_mask": "is_paused"},
            body={"is_paused": paused},
        )
        return DagInfo.from_json(data)

    # -- Variables (GET/PATCH/POST /variables[/{key}], the same in /api/v1 and /api/v2) --

    async def get_variable(self, key: str) -> str | None:
        """The Variable's value as stored (a string), or None when there is none."""
        try:
            data = await self.request("GET", f"/variables/{quote(key, safe='')}")
        except AirflowNotFound:
            return None
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise AirflowError(200, f"GET /variables/{key}: answer has no string value")
        return value

    async def set_variable(self, key: str, value: str, description: str | None = None) -> None:
        """Create or replace the Variable's value (PATCH, POST when it does not exist)."""
        body: dict[str, Any] = {"key": key, "value": value}
        if description is not None:
            body["description"] = description
        try:
            await self.request(
                "PATCH",
                f"/variables/{quote(key, safe='')}",
                params={"update_mask": "value"},
                body={"key": key, "value": value},
            )
        except AirflowNotFound:
            await self.request("POST", "/variables", body=body)

    async def delete_variable(self, key: str) -> None:
        with contextlib.suppress(AirflowNotFound):  # already gone: the wanted state
            await self.request("DELETE", f"/variables/{quote(key, safe='')}")

    # -- DAG runs --

    async def list_runs(
        self,
        dag_id: str,
        limit: int = 25,
        order_by: str = "-start_date",
        states: Sequence[str] | None = None,
    ) -> list[DagRun]:
        """Runs of one DAG (``~`` for all), ordered by the server as asked."""
        params: list[tuple[str, str]] = [("limit", str(limit)), ("order_by", order_by)]
        params.extend(("state", s) for s in states or ())
        data = await self.request("GET", f"/dags/{quote(dag_id, safe='~')}/dagRuns", params=params)
        return [DagRun.from_json(item) for item in data.get("dag_runs") or []]

    async def list_runs_batch(
        self,
        dag_ids: Sequence[str],
        limit: int = 100,
        order_by: str = "-start_date",
        states: Sequence[str] | None = None,
    ) -> RunPage:
        """Runs of several DAGs in one request: ``POST /dags/~/dagRuns/list``.

        Same body in Airflow 2.1+ (``ListDagRunsForm``) and 3 (``DAGRunsBatchBody``):
        ``dag_ids``, ``states``, ``order_by``, ``page_limit``. The page keeps
        ``total_entries`` so callers can tell whether it holds every match.
        """
        ids = list(dict.fromkeys(dag_ids))
        if not ids:
            # An empty dag_ids means "every DAG" to Airflow 2.
            raise ValueError("list_runs_batch needs at least one dag_id")
        body: dict[str, Any] = {"dag_ids": ids, "order_by": order_by, "page_limit": limit}
        if states:
            body["states"] = list(states)
        data = await self.request("POST", "/dags/~/dagRuns/list", body=body)
        runs = [DagRun.from_json(item) for item in data.get("dag_runs") or []]
        total = data.get("total_entries")
        return RunPage(runs=runs, total_entries=total if isinstance(total, int) else None)

    async def get_run(self, dag_id: str, dag_run_id: str) -> DagRun:
        data = await self.request(
            "GET",
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(dag_run_id, safe='')}",
        )
        return DagRun.from_json(data)

    async def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        dag_run_id: str | None = None,
        logical_date: datetime | None = None,
    ) -> DagRun:
        """Start a run. Airflow 3 requires ``logical_date`` (null allowed) and
        forbids unknown fields; Airflow 2.2+ takes ``logical_date`` and fills in
        now when it is left out."""
        body: dict[str, Any] = {"conf": dict(conf or {})}
        if dag_run_id is not None:
            body["dag_run_id"] = dag_run_id
        if await self.version() == 3:
            body["logical_date"] = None if logical_date is None else _iso(logical_date)
        elif logical_date is not None:
            body["logical_date"] = _iso(logical_date)
        data = await self.request("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", body=body)
        return DagRun.from_json(data)


__all__ = [
    "AirflowAuthError",
    "AirflowClient",
    "AirflowConflict",
    "AirflowError",
    "AirflowNotFound",
    "AirflowSettings",
    "AirflowUnavailable",
    "DagInfo",
    "DagRun",
    "RunPage",
    "common_substring",
]
