"""A local stand-in for an Airflow 2 API server: the stable REST API's ``/api/v1`` paths
the client uses, with basic auth, the documented JSON shapes and RFC 7807 error bodies.

Airflow 2 cannot run next to Airflow 3 here, so its API is served by this aiohttp
app, following the Airflow 2.10 REST API reference (openapi v1.yaml): DAG and
DAGRun objects, ``{"dags"|"dag_runs": [...], "total_entries": N}`` collections,
``application/problem+json`` errors with ``type``, ``title``, ``status``,
``detail``, and ``WWW-Authenticate: Basic`` on 401. Ordering puts NULL start
dates first when descending, as PostgreSQL (Airflow 2's usual database) does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .fake_http import Arrival, record_arrivals, retry_after_headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOCS = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"
RUN_FIELDS = {
    "dag_run_id",
    "logical_date",
    "execution_date",
    "conf",
    "note",
    "data_interval_start",
    "data_interval_end",
}
ORDERABLE = {
    "id",
    "state",
    "dag_id",
    "execution_date",
    "logical_date",
    "dag_run_id",
    "start_date",
    "end_date",
    "updated_at",
    "external_trigger",
    "conf",
}


# ListDagRunsForm (Airflow 2.1+; order_by new in 2.1.0).
DATE_FILTERS = (
    "execution_date_gte",
    "execution_date_lte",
    "start_date_gte",
    "start_date_lte",
    "end_date_gte",
    "end_date_lte",
)
BATCH_FIELDS = {"order_by", "page_offset", "page_limit", "dag_ids", "states", *DATE_FILTERS}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass
class Run:
    dag_id: str
    dag_run_id: str
    state: str
    run_type: str
    logical_date: datetime
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_run_id": self.dag_run_id,
            "dag_id": self.dag_id,
            "logical_date": iso(self.logical_date),
            "execution_date": iso(self.logical_date),
            "start_date": iso(self.start_date),
            "end_date": iso(self.end_date),
            "data_interval_start": iso(self.logical_date),
            "data_interval_end": iso(self.logical_date),
            "last_scheduling_decision": iso(self.start_date),
            "run_type": self.run_type,
            "state": self.state,
            "external_trigger": self.run_type == "manual",
            "conf": self.conf,
            "note": self.note,
        }


@dataclass
class Dag:
    dag_id: str
    is_paused: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "dag_display_name": self.dag_id,
            "root_dag_id": None,
            "is_paused": self.is_paused,
            "is_active": True,
            "is_subdag": False,
            "last_parsed_time": "2024-01-01T00:00:00+00:00",
            "last_pickled": None,
            "last_expired": None,
            "scheduler_lock": None,
            "pickle_id": None,
            "default_view": "grid",
            "fileloc": f"/opt/airflow/dags/{self.dag_id}.py",
            "file_token": "Ii9vcHQvYWlyZmxvdy9kYWdzIg.fake",
            "owners": ["data-platform"],
            "description": None,
            "schedule_interval": {"__type": "CronExpression", "value": "*/5 * * * *"},
            "timetable_description": "Every 5 minutes",
            "tags": [{"name": "external"}],
            "max_active_tasks": 16,
            "max_active_runs": 16,
            "has_task_concurrency_limits": False,
            "has_import_errors": False,
            "next_dagrun": None,
            "next_dagrun_data_interval_start": None,
            "next_dagrun_data_interval_end": None,
            "next_dagrun_create_after": None,
        }


def problem(status: int, title: str, kind: str, detail: str | None = None) -> web.Response:
    body = {
        "detail": detail,
        "status": status,
        "title": title,
        "type": f"{DOCS}#section/Errors/{kind}",
    }
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{{'{name}': ['Not a valid datetime.']}}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{{'{name}': ['Not a valid datetime.']}}") from None
    # Airflow 2 assumes UTC for naive input.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class FakeAirflow2:
    """State plus the aiohttp app. Arrange with add_dag/add_run; inspect ``requests``."""

    def __init__(self, username: str = "admin", password: str = "secret") -> None:
        self.username = username
        self.password = password
        self.dags: dict[str, Dag] = {}
        self.runs: list[Run] = []
        self.requests: list[tuple[str, str]] = []
        # Set to an HTTP status to make every API call fail that way (e.g. 503).
        self.failure: int | None = None
        # Answer the next N API calls with these statuses, then behave; an injected
        # 429 or 503 carries ``retry_after`` as its Retry-After (when set).
        self.fail_next: list[int] = []
        self.retry_after: str | None = None
        # Method, path and arrival time of every request, in order.
        self.arrivals: list[Arrival] = []
        # Variables as Airflow 2 keeps them: key -> {"value": str, "description": str | None}.
        self.variables: dict[str, dict[str, Any]] = {}
        self._next_id = 1

    def add_dag(self, dag_id: str, is_paused: bool = False) -> Dag:
        self.dags[dag_id] = Dag(dag_id, is_paused)
        return self.dags[dag_id]

    def add_run(
        self,
        dag_id: str,
        dag_run_id: str,
        state: str,
        logical_date: datetime,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        run_type: str = "scheduled",
    ) -> Run:
        run = Run(dag_id, dag_run_id, state, run_type, logical_date, start_date, end_date)
        run.id = self._next_id
        self._next_id += 1
        self.runs.append(run)
        return run

    # -- middleware --

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.path == "/api/v1/health":
            return await handler(request)  # no auth, as in Airflow 2
        if self.failure is not None:
            return problem(self.failure, "Service Unavailable", "Unknown", "injected failure")
        if self.fail_next:
            code = self.fail_next.pop(0)
            title = HTTPStatus(code).phrase
            answer = problem(code, title, "Unknown", f"injected failure {code}")
            answer.headers.update(retry_after_headers(code, self.retry_after))
            return answer
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or (user, password) != (self.username, self.password):
            return problem(401, "Unauthorized", "Unauthenticated")
        return await handler(request)

    # -- handlers --

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {
                    "status": "healthy",
                    "latest_scheduler_heartbeat": datetime.now(UTC).isoformat(),
                },
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "2.10.5", "git_version": None})

    def _dag(self, request: web.Request) -> Dag | web.Response:
        dag_id = request.match_info["dag_id"]
        dag = self.dags.get(dag_id)
        if dag is None:
            return problem(
                404, "DAG not found", "NotFound", f"DAG with dag_id: '{dag_id}' not found"
            )
        return dag

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        """The parsed body, or Airflow's 400 answer when it is not JSON."""
        try:
            return await request.json()
        except ValueError:
            return problem(400, "Bad Request", "BadRequest", "Request body is not valid JSON")

    async def list_dags(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
        pattern = request.query.get("dag_id_pattern")
        dags = sorted(self.dags.values(), key=lambda d: d.dag_id)
        if pattern:
            # Airflow 2: dag_id ILIKE '%pattern%' (no OR syntax; "_" and "%" are wildcards).
            like = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
            dags = [d for d in dags if re.search(like, d.dag_id, re.IGNORECASE)]
        page = dags[offset : offset + limit]
        return web.json_response({"dags": [d.to_json() for d in page], "total_entries": len(dags)})

    async def get_dag(self, request: web.Request) -> web.Response:
        dag = self._dag(request)
        if isinstance(dag, web.Response):
            return dag
        return web.json_response(dag.to_json())

    async def patch_dag(self, request: web.Request) -> web.Response:
        dag = self._dag(request)
        if isinstance(dag, web.Response):
            return dag
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        mask = request.query.get("update_mask")
        if mask is not None and mask != "is_paused":
            return problem(
                400,
                "Bad Request",
                "BadRequest",
                "Only `is_paused` field can be updated through the REST API",
            )
        if not isinstance(body, dict) or not isinstance(body.get("is_paused"), bool):
            return problem(
                400,
                "Bad Request",
                "BadRequest",
                "{'is_paused': ['Missing data for required field.']}",
            )
        dag.is_paused = body["is_paused"]
        return web.json_response(dag.to_json())

    def _ordered(self, runs: list[Run], order_by: str) -> list[Run] | web.Response:
        attr = order_by.lstrip("-")
        if attr not in ORDERABLE:
            return problem(
                400,
                "Ordering with '"
                + attr
                + "' is disallowed or the attribute does not exist on the model",
                "BadRequest",
            )
        key = {"dag_run_id": "dag_run_id", "execution_date": "logical_date"}.get(attr, attr)
        descending = order_by.startswith("-")
        present = [r for r in runs if getattr(r, key) is not None]
        absent = [r for r in runs if getattr(r, key) is None]
        present.sort(key=lambda r: getattr(r, key), reverse=descending)
        # PostgreSQL: NULLs sort as larger than any value.
        return absent + present if descending else present + absent

    async def list_runs(self, request: web.Request) -> web.Response:
        dag_id = request.match_info["dag_id"]
        if dag_id != "~" and dag_id not in self.dags:
            return problem(
                404, "DAG not found", "NotFound", f"DAG with dag_id: '{dag_id}' not found"
            )
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
        states = request.query.getall("state", [])
        runs = [r for r in self.runs if dag_id == "~" or r.dag_id == dag_id]
        if states:
            runs = [r for r in runs if r.state in states]
        ordered = self._ordered(runs, request.query.get("order_by", "id"))
        if isinstance(ordered, web.Response):
            return ordered
        page = ordered[offset : offset + limit]
        return web.json_response(
            {"dag_runs": [r.to_json() for r in page], "total_entries": len(ordered)}
        )

    async def list_runs_batch(self, request: web.Request) -> web.Response:
        """``POST /dags/~/dagRuns/list`` with a ListDagRunsForm body (marshmallow:
        unknown fields and bad values are 400 with the field messages)."""
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return problem(400, "Bad Request", "BadRequest", "{'_schema': ['Invalid input type.']}")
        errors: dict[str, list[str]] = {}
        for name in sorted(set(body) - BATCH_FIELDS):
            errors[name] = ["Unknown field."]
        for name in ("dag_ids", "states"):
            value = body.get(name)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                errors[name] = ["Not a valid list."]
        limit = body.get("page_limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool):
            errors["page_limit"] = ["Not a valid integer."]
        elif limit < 1:
            errors["page_limit"] = ["Must be greater than or equal to 1."]
        offset = body.get("page_offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            errors["page_offset"] = ["Must be greater than or equal to 0."]
        bounds: dict[str, datetime] = {}
        for name in DATE_FILTERS:
            if body.get(name) is not None:
                try:
                    bounds[name] = _parse_time(body[name], name)
                except ValueError:
                    errors[name] = ["Not a valid datetime."]
        if errors:
            return problem(400, "Bad Request", "BadRequest", str(errors))
        runs = list(self.runs)
        if body.get("dag_ids"):
            runs = [r for r in runs if r.dag_id in body["dag_ids"]]
        if body.get("states"):
            runs = [r for r in runs if r.state in body["states"]]
        for name, bound in bounds.items():
            attr, _, op = name.rpartition("_")
            attr = "logical_date" if attr == "execution_date" else attr
            runs = [
                r
                for r in runs
                if getattr(r, attr) is not None
                and (getattr(r, attr) >= bound if op == "gte" else getattr(r, attr) <= bound)
            ]
        ordered = self._ordered(runs, body.get("order_by") or "id")
        if isinstance(ordered, web.Response):
            return ordered
        page = ordered[offset : offset + limit]
        return web.json_response(
            {"dag_runs": [r.to_json() for r in page], "total_entries": len(ordered)}
        )

    async def get_run(self, request: web.Request) -> web.Response:
        dag_id, run_id = request.match_info["dag_id"], request.match_info["run_id"]
        for run in self.runs:
            if run.dag_id == dag_id and run.dag_run_id == run_id:
                return web.json_response(run.to_json())
        return problem(
            404,
            "DAGRun not found",
            "NotFound",
            f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' not found",
        )

    async def trigger(self, request: web.Request) -> web.Response:
        dag = self._dag(request)
        if isinstance(dag, web.Response):
            return dag
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return problem(400, "Bad Request", "BadRequest", "{'_schema': ['Invalid input type.']}")
        unknown = sorted(set(body) - RUN_FIELDS)
        if unknown:
            return problem(
                400, "Bad Request", "BadRequest", str({k: ["Unknown field."] for k in unknown})
            )
        try:
            logical = body.get("logical_date")
            execution = body.get("execution_date")
            if logical is not None and execution is not None and logical != execution:
                raise ValueError("logical_date conflicts with execution_date")
            raw = logical if logical is not None else execution
            when = _parse_time(raw, "logical_date") if raw is not None else datetime.now(UTC)
        except ValueError as exc:
            return problem(400, "Bad Request", "BadRequest", str(exc))
        conf = body.get("conf", {})
        if not isinstance(conf, dict):
            return problem(
                400, "Bad Request", "BadRequest", "{'conf': ['Not a valid mapping type.']}"
            )
        run_id = body.get("dag_run_id") or f"manual__{when.isoformat()}"
        for run in self.runs:
            if run.dag_id != dag.dag_id:
                continue
            if run.dag_run_id == run_id:
                detail = (
                    f"DAGRun with DAG ID: '{dag.dag_id}' and DAGRun ID: '{run_id}' already exists"
                )
            elif run.logical_date == when:
                detail = (
                    f"DAGRun with DAG ID: '{dag.dag_id}' and DAGRun logical date: "
                    f"'{when.isoformat(sep=' ')}' already exists"
                )
            else:
                continue
            return problem(409, "Conflict", "AlreadyExists", detail)
        run = self.add_run(dag.dag_id, run_id, "queued", when, run_type="manual")
        run.conf = conf
        return web.json_response(run.to_json())

    # -- variables (Airflow 2.10 stable REST API: /variables, /variables/{variable_key}) --

    def _variable_json(self, key: str) -> dict[str, Any]:
        return {"key": key, **self.variables[key]}

    async def get_variable(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self.variables:
            return problem(404, "Variable not found", "NotFound")
        return web.json_response(self._variable_json(key))

    async def _variable_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return problem(400, "Bad Request", "BadRequest", "body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            return problem(400, "Bad Request", "BadRequest", "'key' is a required property")
        if not isinstance(body.get("value"), str):
            return problem(400, "Bad Request", "BadRequest", "'value' must be a string")
        return body

    async def patch_variable(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await self._variable_body(request)
        if isinstance(body, web.Response):
            return body
        if body["key"] != key:
            return problem(
                400,
                "Invalid post body",
                "BadRequest",
                "key from request body doesn't match uri parameter",
            )
        if key not in self.variables:
            return problem(404, "Variable not found", "NotFound")
        mask = [f.strip() for f in request.query.get("update_mask", "").split(",") if f.strip()]
        for field_name in mask or ["value", "description"]:
            if field_name not in ("value", "description"):
                return problem(
                    400,
                    "Bad Request",
                    "BadRequest",
                    f"'{field_name}' is unknown or cannot be updated.",
                )
            if field_name in body:
                self.variables[key][field_name] = body[field_name]
        return web.json_response(self._variable_json(key))

    async def post_variable(self, request: web.Request) -> web.Response:
        body = await self._variable_body(request)
        if isinstance(body, web.Response):
            return body
        self.variables[body["key"]] = {
            "value": body["value"],
            "description": body.get("description"),
        }
        return web.json_response(self._variable_json(body["key"]))

    async def delete_variable(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if self.variables.pop(key, None) is None:
            return problem(404, "Variable not found", "NotFound")
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[record_arrivals(self.arrivals), self._middleware])
        app.router.add_get("/api/v1/variables/{key}", self.get_variable)
        app.router.add_patch("/api/v1/variables/{key}", self.patch_variable)
        app.router.add_delete("/api/v1/variables/{key}", self.delete_variable)
        app.router.add_post("/api/v1/variables", self.post_variable)
        app.router.add_get("/api/v1/health", self.health)
        app.router.add_get("/api/v1/version", self.version)
        app.router.add_get("/api/v1/dags", self.list_dags)
        app.router.add_get("/api/v1/dags/{dag_id}", self.get_dag)
        app.router.add_patch("/api/v1/dags/{dag_id}", self.patch_dag)
        # Registered before /dags/{dag_id}/...: "~" is a literal path segment here.
        app.router.add_post("/api/v1/dags/~/dagRuns/list", self.list_runs_batch)
        app.router.add_get("/api/v1/dags/{dag_id}/dagRuns", self.list_runs)
        app.router.add_post("/api/v1/dags/{dag_id}/dagRuns", self.trigger)
        app.router.add_get("/api/v1/dags/{dag_id}/dagRuns/{run_id}", self.get_run)
        return app
