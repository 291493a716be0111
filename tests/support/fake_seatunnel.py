"""A local stand-in for the SeaTunnel Engine (Zeta) REST API v2.

Follows docs/en/seatunnel-engine/rest-api-v2.md and the servlets behind it
(apache/seatunnel, seatunnel-engine-server ``rest/servlet``):

- every path under the configured ``context-path``;
- ``GET /overview``: counts as strings (``works``, ``runningJobs``, ...);
- ``GET /running-jobs``: every job not in an end state, whatever its status;
- ``GET /job-info/{jobId}``: the job, or ``{"jobId": "..."}`` alone when unknown;
  a non-numeric id is Java's NumberFormatException, an IllegalArgumentException: 400;
- ``GET /finished-jobs/{state}`` (state optional): jobs in end states, oldest finish first;
- ``POST /stop-job`` ``{"jobId": N, "isStopWithSavePoint": bool}``: answered at once,
  the job then goes DOING_SAVEPOINT -> SAVEPOINT_DONE (or CANCELING -> CANCELED)
  over the next ``settle_reads`` reads of it; a savepoint of a job not running is the
  coordinator's SavePointFailedException (500);
- ``POST /submit-job?jobId=&jobName=&isStartWithSavePoint=&format=json|hocon``:
  ``isStartWithSavePoint`` without ``jobId`` is 400;
- errors as ExceptionHandlingFilter writes them: ``{"status": "fail", "message": ...}``,
  400 for IllegalArgumentException, 500 otherwise; with basic auth on, 401 and
  ``WWW-Authenticate: Basic realm="SeaTunnel Web UI"``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .fake_http import retry_after_headers, serve_app

END = {"FAILED", "SAVEPOINT_DONE", "CANCELED", "FINISHED", "UNKNOWABLE"}
_JOB_NAME = re.compile(r'job\.name\s*[=:]\s*"?([^"\n]+)"?')


def fail(status: int, message: str) -> web.Response:
    return web.json_response({"status": "fail", "message": message}, status=status)


@dataclass
class FakeJob:
    job_id: str
    name: str
    status: str = "RUNNING"
    config: str = ""
    config_format: str = "json"
    start_with_savepoint: bool = False
    restored_from_savepoint: bool = False
    create_time: str = "2026-12-01 00:00:00"
    finish_time: str | None = None
    error: str | None = None
    # (status now, status after the pending reads, reads left)
    pending: tuple[str, int] | None = None

    def read(self) -> None:
        if self.pending is None:
            return
        final, left = self.pending
        if left <= 1:
            self.status = final
            self.finish_time = "2026-12-01 00:30:00"
            self.pending = None
        else:
            self.pending = (final, left - 1)

    def as_json(self) -> dict[str, Any]:
        dag = {"jobId": self.job_id, "envOptions": [], "vertexInfoMap": [], "pipelineEdges": {}}
        body: dict[str, Any] = {
            "jobId": self.job_id,
            "jobName": self.name,
            "jobStatus": self.status,
            "createTime": self.create_time,
            "jobDag": dag,
            "metrics": {"sourceReceivedCount": "0", "sinkWriteCount": "0"},
        }
        if self.status in END:
            body["finishedTime"] = self.finish_time
            body["errorMsg"] = self.error
        else:
            body["envOptions"] = {"job.mode": "STREAMING"}
            body["pluginJarsUrls"] = []
            body["isStartWithSavePoint"] = self.start_with_savepoint
        return body


@dataclass
class FakeSeaTunnel:
    context_path: str = ""
    basic_auth: tuple[str, str] | None = None
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    # Reads of a stopping job before it reaches its end state.
    settle_reads: int = 1
    workers: int = 1
    fail_next: list[int] = field(default_factory=list)
    # The Retry-After an injected 429 or 503 carries (e.g. a gateway in front of the engine).
    retry_after: str | None = None
    # Refuse every submission with this message followed by the config, as an
    # engine exception quoting its input does (500).
    reject_submit: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(900_000_000_001))

    def add(self, name: str, status: str = "RUNNING", job_id: str | None = None) -> FakeJob:
        job = FakeJob(job_id or str(next(self._ids)), name, status)
        if status in END:  # in the order added
            job.finish_time = f"2026-12-01 00:{len(self.jobs):02d}:00"
        self.jobs[job.job_id] = job
        return job

    def by_name(self, name: str) -> list[FakeJob]:
        return [j for j in self.jobs.values() if j.name == name]

    def posts(self, path: str) -> list[tuple[str, str]]:
        return [(q, body) for method, q, body in self.requests if method == "POST" and path in q]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        root = self.context_path
        app.router.add_get(root + "/overview", self._overview)
        app.router.add_get(root + "/running-jobs", self._running)
        app.router.add_get(root + "/job-info/{job_id}", self._job_info)
        app.router.add_get(root + "/finished-jobs", self._finished)
        app.router.add_get(root + "/finished-jobs/{state}", self._finished)
        app.router.add_post(root + "/stop-job", self._stop)
        app.router.add_post(root + "/submit-job", self._submit)
        return app

    def serve(self) -> AbstractAsyncContextManager[str]:
        return serve_app(self.app())

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = (await request.text()) if request.method == "POST" else ""
        self.requests.append((request.method, request.path_qs, body))
        if self.basic_auth is not None:
            user, password = self.basic_auth
            wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if request.headers.get("Authorization") != wanted:
                return web.Response(
                    status=401, headers={"WWW-Authenticate": 'Basic realm="SeaTunnel Web UI"'}
                )
        if self.fail_next:
            code = self.fail_next.pop(0)
            answer = fail(code, f"injected failure {code}")
            answer.headers.update(retry_after_headers(code, self.retry_after))
            return answer
        response: web.StreamResponse = await handler(request)
        return response

    async def _overview(self, request: web.Request) -> web.Response:
        for job in self.jobs.values():
            job.read()
        statuses = [j.status for j in self.jobs.values()]
        return web.json_response(
            {
                "projectVersion": "2.3.11",
                "gitCommitAbbrev": "DeadD0d0",
                "totalSlot": "0",
                "unassignedSlot": "0",
                "works": str(self.workers),
                "runningJobs": str(sum(s not in END for s in statuses)),
                "finishedJobs": str(statuses.count("FINISHED")),
                "failedJobs": str(statuses.count("FAILED")),
                "cancelledJobs": str(statuses.count("CANCELED")),
            }
        )

    async def _running(self, request: web.Request) -> web.Response:
        for job in self.jobs.values():
            job.read()
        return web.json_response([j.as_json() for j in self.jobs.values() if j.status not in END])

    async def _job_info(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if not job_id.lstrip("-").isdigit():
            return fail(400, f'For input string: "{job_id}"')
        job = self.jobs.get(job_id)
        if job is None:
            return web.json_response({"jobId": job_id})
        job.read()
        return web.json_response(job.as_json())

    async def _finished(self, request: web.Request) -> web.Response:
        state = request.match_info.get("state", "").upper()
        for job in self.jobs.values():
            job.read()
        done = [
            j for j in self.jobs.values() if j.status in END and (not state or j.status == state)
        ]
        done.sort(key=lambda j: j.finish_time or "")
        rows = []
        for job in done:
            row = job.as_json()
            row["finishTime"] = row.pop("finishedTime", None)
            row["pluginJarsUrls"] = []
            rows.append(row)
        return web.json_response(rows)

    async def _json_body(self, request: web.Request) -> Any:
        raw = await request.text()
        if not raw:
            raise ValueError("Request body is empty.")
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("Invalid JSON format in request body.") from None

    async def _stop(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request)
        except ValueError as exc:
            return fail(400, str(exc))
        if not isinstance(body, dict) or body.get("jobId") is None:
            return fail(400, "jobId cannot be empty.")
        job_id = str(body["jobId"])
        savepoint = str(body.get("isStopWithSavePoint", False)).lower() == "true"
        job = self.jobs.get(job_id)
        if job is None or job.status in END:
            if savepoint:
                return fail(500, f"The job with id '{job_id}' not running, save point failed")
            return web.json_response({"jobId": job_id})
        job.status = "DOING_SAVEPOINT" if savepoint else "CANCELING"
        job.pending = ("SAVEPOINT_DONE" if savepoint else "CANCELED", self.settle_reads)
        return web.json_response({"jobId": job_id})

    async def _submit(self, request: web.Request) -> web.Response:
        query = request.query
        with_savepoint = query.get("isStartWithSavePoint", "").lower() == "true"
        if with_savepoint and query.get("jobId") is None:
            return fail(400, "Please provide jobId when start with save point.")
        config_format = query.get("format", "json").lower()
        raw = await request.text()
        if self.reject_submit is not None:
            return fail(500, f"{self.reject_submit}: {raw.strip()}")
        if not raw.strip():
            return fail(400, "Request body is empty.")
        name = query.get("jobName") or ""
        if config_format == "json":
            try:
                parsed = json.loads(raw)
            except ValueError:
                return fail(400, "Invalid JSON format in request body.")
            name = name or str((parsed.get("env") or {}).get("job.name", "SeaTunnel"))
        elif config_format == "hocon":
            found = _JOB_NAME.search(raw)
            name = name or (found.group(1).strip() if found else "SeaTunnel")
        else:
            return fail(400, f"Unsupported format: {config_format}")
        job_id = query.get("jobId") or str(next(self._ids))
        if not job_id.isdigit():
            return fail(400, f'For input string: "{job_id}"')
        previous = self.jobs.get(job_id)
        if previous is not None and previous.status not in END:
            return fail(500, f"The job id {job_id} has already been submitted and is running.")
        job = FakeJob(job_id, name, "RUNNING", raw, config_format, with_savepoint)
        job.restored_from_savepoint = (
            with_savepoint and previous is not None and previous.status == "SAVEPOINT_DONE"
        )
        self.jobs[job_id] = job
        return web.json_response({"jobId": job_id, "jobName": name})
