"""The parts of a validated OpenLineage RunEvent that the mapping needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedguard.core.times import iso_epoch

from .spec import InvalidEvent

# Where the Airflow provider puts the run's conf: DAG-level events carry the
# ``airflowDagRun`` facet, task-level events the ``airflow`` facet
# (../shared/notes/openlineage-facts.md; both have ``dagRun.conf``).
CONF_FACETS = ("airflowDagRun", "airflow")
# An error message is kept, not a novel: Airflow puts the exception's text here.
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class LineageEvent:
    event_type: str  # START, RUNNING, COMPLETE, ABORT, FAIL, OTHER ("" when absent)
    event_time: float  # epoch seconds
    run_id: str
    job_namespace: str
    job_name: str
    outputs: tuple[tuple[str, str], ...]  # (namespace, name)
    conf: dict[str, Any]
    error_message: str | None
    # The Airflow DAG run (``dagRun.run_id``) a DAG- or task-level event belongs
    # to; the OpenLineage runId when there is none.
    dag_run_id: str

    def conf_value(self, key: str) -> str | None:
        value = self.conf.get(key)
        return value if isinstance(value, str) else None


def parse_event_time(value: str) -> float:
    """Epoch seconds of an ISO 8601 time with a UTC offset; InvalidEvent otherwise."""
    try:
        return iso_epoch(value)
    except ValueError as exc:
        raise InvalidEvent(f"eventTime: {exc}") from None


def _dag_run(facets: dict[str, Any]) -> dict[str, Any]:
    for name in CONF_FACETS:
        facet = facets.get(name)
        dag_run = facet.get("dagRun") if isinstance(facet, dict) else None
        if isinstance(dag_run, dict):
            return dag_run
    return {}


def _error_message(facets: dict[str, Any]) -> str | None:
    facet = facets.get("errorMessage")
    message = facet.get("message") if isinstance(facet, dict) else None
    return message[:MAX_MESSAGE_CHARS] if isinstance(message, str) else None


def parse_run_event(data: dict[str, Any]) -> LineageEvent:
    """A RunEvent already valid under the spec (spec.validate) as a LineageEvent."""
    run = data["run"]
    job = data["job"]
    facets = run.get("facets") or {}
    dag_run = _dag_run(facets)
    conf = dag_run.get("conf")
    dag_run_id = dag_run.get("run_id")
    return LineageEvent(
        event_type=data.get("eventType", ""),
        event_time=parse_event_time(data["eventTime"]),
        run_id=run["runId"],
        job_namespace=job["namespace"],
        job_name=job["name"],
        outputs=tuple((item["namespace"], item["name"]) for item in data.get("outputs") or ()),
        conf=conf if isinstance(conf, dict) else {},
        error_message=_error_message(facets),
        dag_run_id=dag_run_id if isinstance(dag_run_id, str) else run["runId"],
    )
