"""An async client of the SeaTunnel Engine (Zeta) REST API v2.

What it uses (docs/en/seatunnel-engine/rest-api-v2.md of apache/seatunnel, and
the servlets behind it): ``GET /overview``, ``GET /running-jobs``, ``GET
/job-info/{jobId}``, ``GET /finished-jobs/{state}``, ``POST /stop-job`` and
``POST /submit-job``, all under the configured ``context-path``.

Shapes worth knowing: job ids are strings of a Java long; the overview's counts
are strings; ``/job-info`` of an unknown id is ``200 {"jobId": "..."}`` and
nothing else; a refused request is ``{"status": "fail", "message": ...}`` with
400 (bad argument) or 500; with basic auth on, 401 and ``WWW-Authenticate``.
``POST /stop-job`` answers 200 as soon as the stop is *requested*: the job goes
through ``DOING_SAVEPOINT`` to ``SAVEPOINT_DONE`` afterwards, so callers poll
``/job-info``.

The exporter's collector and the responder's ``pause_streaming`` share it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

import aiohttp
from pydantic import Field

from .errors import HttpAnswerError
from .retry_after import retry_after_of
from .schema import ConfigModel, HttpUrl, PositiveFloat, Secret, check, read_secret

# JobStatus of seatunnel-engine-core, in the engine's order.
JOB_STATES = (
    "INITIALIZING",
    "CREATED",
    "PENDING",
    "SCHEDULED",
    "RUNNING",
    "FAILING",
    "FAILED",
    "DOING_SAVEPOINT",
    "SAVEPOINT_DONE",
    "CANCELING",
    "CANCELED",
    "FINISHED",
    "UNKNOWABLE",
)
END_STATES = frozenset({"FAILED", "SAVEPOINT_DONE", "CANCELED", "FINISHED", "UNKNOWABLE"})
ConfigFormat = Literal["hocon", "json"]


def _check_context_path(value: Any) -> str | None:
    text = str(value)
    if text and (not text.startswith("/") or text.endswith("/") or " " in text):
        return f"must be empty or a path such as /seatunnel (no trailing '/'), got {value!r}"
    return None


class SeaTunnelSettings(ConfigModel):
    """Where the SeaTunnel Engine's REST API v2 answers (``seatunnel.engine.http``)."""

    enabled: bool = False
    base_url: HttpUrl = "http://127.0.0.1:8080"
    context_path: Annotated[str, check(_check_context_path)] = Field(
        "", description="http.context-path"
    )
    # Basic auth (http.enable-basic-auth); the password from the env or a file.
    username: str | None = None
    password: Secret = Field(None, description="prefer FEEDGUARD_..._SEATUNNEL_PASSWORD or a file")
    password_file: str | None = None
    timeout_seconds: PositiveFloat = 5.0

    def read_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "SeaTunnel password")


class SeaTunnelError(HttpAnswerError):
    """An answer that is not a success, or no answer at all (status 0)."""


class SeaTunnelUnavailable(SeaTunnelError):
    """Connection refused, timeout, or a 5xx."""


class SeaTunnelRefused(SeaTunnelError):
    """4xx: bad request, credentials, or a path the server does not have."""


@dataclass(frozen=True)
class Job:
    job_id: str
    name: str
    status: str
    create_time: str | None = None  # "yyyy-MM-dd HH:mm:ss", the engine's local time
    finish_time: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        # /finished-jobs says finishTime, /job-info of a finished job finishedTime.
        finish = data.get("finishTime") or data.get("finishedTime")
        error = data.get("errorMsg")
        return cls(
            job_id=str(data["jobId"]),
            name=str(data.get("jobName") or ""),
            status=str(data.get("jobStatus") or "UNKNOWABLE").upper(),
            create_time=str(data["createTime"]) if data.get("createTime") else None,
            finish_time=str(finish) if finish else None,
            error=str(error) if error else None,
        )


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


@dataclass(frozen=True)
class Overview:
    workers: int
    running: int
    finished: int
    failed: int
    cancelled: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Overview:
        return cls(
            workers=_count(data.get("works", 0)),
            running=_count(data.get("runningJobs", 0)),
            finished=_count(data.get("finishedJobs", 0)),
            failed=_count(data.get("failedJobs", 0)),
            cancelled=_count(data.get("cancelledJobs", 0)),
        )


class SeaTunnelClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: SeaTunnelSettings,
        password: str | None = None,
    ) -> None:
        self._session = session
        self._root = settings.base_url.rstrip("/") + settings.context_path
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self._headers = {"Accept": "application/json"}
        secret = password if password is not None else settings.read_password()
        if settings.username:
            pair = f"{settings.username}:{secret or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method,
                self._root + path,
                params=params,
                data=body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                text = await response.text()
                status = response.status
                retry_after = retry_after_of(status, response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SeaTunnelUnavailable(0, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if status >= 400:
            detail = _error_message(text) or f"{method} {path}"
            kind = SeaTunnelUnavailable if status >= 500 else SeaTunnelRefused
            raise kind(status, detail, retry_after)
        try:
            return json.loads(text) if text else None
        except ValueError as exc:
            raise SeaTunnelUnavailable(
                status, f"{method} {path}: not JSON: {text[:200]!r}"
            ) from exc

    async def overview(self) -> Overview:
        data = await self._request("GET", "/overview")
        return Overview.from_json(data if isinstance(data, dict) else {})

    async def running_jobs(self) -> list[Job]:
        return _jobs(await self._request("GET", "/running-jobs"))

    async def finished_jobs(self, state: str) -> list[Job]:
        return _jobs(await self._request("GET", f"/finished-jobs/{quote(state, safe='')}"))

    async def job_info(self, job_id: str) -> Job | None:
        """The job, or None when the engine knows no such id (it answers just the id)."""
        data = await self._request("GET", f"/job-info/{quote(job_id, safe='')}")
        if not isinstance(data, dict) or "jobStatus" not in data:
            return None
        return Job.from_json(data)

    async def stop_job(self, job_id: str, *, savepoint: bool) -> None:
        body = json.dumps({"jobId": int(job_id), "isStopWithSavePoint": savepoint}).encode()
        await self._request("POST", "/stop-job", body=body)

    async def submit_job(
        self,
        config: str,
        *,
        config_format: ConfigFormat,
        job_id: str | None = None,
        job_name: str | None = None,
        start_with_savepoint: bool = False,
    ) -> str:
        """Submit ``config`` (HOCON or JSON text); the job id the engine answers."""
        params: dict[str, str] = {"format": config_format}
        if job_id is not None:
            params["jobId"] = job_id
        if job_name is not None:
            params["jobName"] = job_name
        if start_with_savepoint:
            params["isStartWithSavePoint"] = "true"
        content_type = "application/json" if config_format == "json" else "text/plain"
        data = await self._request(
            "POST", "/submit-job", params=params, body=config.encode(), content_type=content_type
        )
        if not isinstance(data, dict) or "jobId" not in data:
            raise SeaTunnelUnavailable(200, f"POST /submit-job: unexpected answer {data!r}")
        return str(data["jobId"])


def _jobs(data: Any) -> list[Job]:
    if not isinstance(data, list):
        raise SeaTunnelUnavailable(200, f"expected a JSON list of jobs, got {type(data).__name__}")
    return [Job.from_json(item) for item in data if isinstance(item, dict) and "jobId" in item]


def _error_message(text: str) -> str | None:
    """The ``message`` of SeaTunnel's ``{"status": "fail", "message": ...}``, or the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300] or None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:300]
    return text.strip()[:300] or None
