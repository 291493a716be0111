"""An async client of Airflow's stable REST API, both generations: the calls
(DAGs, Variables, DAG runs) and the models of their answers, over the connection
in ``airflow_api`` (version, auth, typed errors).

The exporter's DAG collector and the responder's runbook actions share this
client; it raises typed errors and leaves turning them into metrics or HTTP
answers to its callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .airflow_api import AirflowApi, AirflowError, AirflowNotFound

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


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        # Airflow 3 rejects naive datetimes with 422; say so before sending.
        raise ValueError(f"logical_date must be timezone-aware, got {value.isoformat()}")
    return value.isoformat()


class AirflowClient(AirflowApi):
    """One Airflow instance. Share one per process; it keeps the token and version."""

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


__all__ = ["AirflowClient", "DagInfo", "DagRun", "RunPage", "common_substring"]
