"""Validation of OpenLineage events against feedguard's own schema of them.

``runevent-subset.schema.json`` is a JSON Schema (draft 2020-12) written for
feedguard: the RunEvent fields feedguard reads, shaped as the OpenLineage 2-0-x
spec documents them (eventTime, producer, schemaURL, run.runId, job.namespace and
name, eventType, inputs and outputs with their facets), open wherever the spec is
open (facets, extra fields).  It is not the published spec: no Python package
ships that file, and it cannot be vendored here.  Events without a ``run``
(DatasetEvent, JobEvent) are checked for the fields every event has, then ignored.

Validated with jsonschema-rs: a few microseconds per Airflow-sized event where
the pure-Python ``jsonschema`` took hundreds (docs/lineage.md).  Draft 2020-12
treats ``format`` as an annotation: ``eventTime`` is parsed by event.py, which
refuses a time without a UTC offset.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

SCHEMA_FILE = "runevent-subset.schema.json"
SCHEMA_ID = "https://feedguard.invalid/schemas/lineage/runevent-subset-2-0.json"


class InvalidEvent(ValueError):
    """Not an OpenLineage event; the text names the field."""


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    )
    if data.get("$id") != SCHEMA_ID:  # a wrong file must not pass for the schema
        raise RuntimeError(f"{SCHEMA_FILE} is not {SCHEMA_ID}: $id {data.get('$id')!r}")
    return data


@cache
def _validator(run_event: bool) -> jsonschema_rs.Draft202012Validator:
    root = schema()
    root["$ref"] = "#/$defs/runEvent" if run_event else "#/$defs/otherEvent"
    return jsonschema_rs.Draft202012Validator(root)


def validate(event: Any) -> bool:
    """True for a RunEvent, False for a valid DatasetEvent or JobEvent; InvalidEvent otherwise."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"<root>: expected a JSON object, got {type(event).__name__}")
    run_event = "run" in event
    if not run_event and "dataset" not in event and "job" not in event:
        raise InvalidEvent('<root>: an OpenLineage event has a "run", a "job" or a "dataset"')
    validator = _validator(run_event)
    if not validator.is_valid(event):
        error = next(iter(validator.iter_errors(event)))
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.instance_path
        ).lstrip(".")
        raise InvalidEvent(f"{where or '<root>'}: {error.message[:300]}")
    return run_event
