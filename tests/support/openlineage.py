"""OpenLineage RunEvents shaped like those apache-airflow-providers-openlineage sends.

Field by field as the real provider sends them (../shared/notes/openlineage-facts.md):
DAG-level events carry ``run.facets.airflowDagRun.dagRun.conf``, task-level
events ``run.facets.airflow.dagRun.conf``; a FAIL carries ``errorMessage``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facet(facet: str, **fields: Any) -> dict[str, Any]:
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"https://openlineage.io/spec/facets/1-0-0/{facet}.json#/$defs/{facet}",
        **fields,
    }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def run_event(
    event_type: str,
    job: str,
    at: float,
    *,
    namespace: str = "airflow",
    conf: dict[str, Any] | None = None,
    run_id: str | None = None,
    dag_run_id: str = "manual__2026-12-01T00:00:00+00:00",
    outputs: tuple[tuple[str, str], ...] = (),
    task: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    dag_id = job.split(".", 1)[0]
    dag_run = {
        "dag_id": dag_id,
        "run_id": dag_run_id,
        "run_type": "manual",
        "conf": conf or {},
        "start_date": iso(at - 5),
        "end_date": iso(at),
    }
    facets: dict[str, Any] = {
        "processing_engine": _facet("ProcessingEngineRunFacet", name="Airflow", version="3.3.2"),
    }
    if task:
        facets["airflow"] = _facet("AirflowRunFacet", dag={"dag_id": dag_id}, dagRun=dag_run)
    else:
        facets["airflowDagRun"] = _facet(
            "AirflowDagRunFacet", dag={"dag_id": dag_id, "owner": "airflow"}, dagRun=dag_run
        )
    if error is not None:
        facets["errorMessage"] = _facet(
            "ErrorMessageRunFacet", message=error, programmingLanguage="python"
        )
    return {
        "eventType": event_type,
        "eventTime": iso(at),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": facets},
        "job": {
            "namespace": namespace,
            "name": job,
            "facets": {
                "jobType": _facet(
                    "JobTypeJobFacet",
                    integration="AIRFLOW",
                    jobType="TASK" if task else "DAG",
                    processingType="BATCH",
                )
            },
        },
        "inputs": [],
        "outputs": [{"namespace": ns, "name": name, "facets": {}} for ns, name in outputs],
    }
