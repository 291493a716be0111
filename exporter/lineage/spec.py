"""Validation against the published OpenLineage spec, version 2-0-2.

``OpenLineage-2-0-2.json`` is https://openlineage.io/spec/2-0-2/OpenLineage.json,
byte for byte as published in the OpenLineage repository (``spec/OpenLineage.json``
at commit a81dabd91ef52d08803394842f56bf9985094e32, Apache License 2.0; sha256
69f68bee00b9beac88a87059c0102410e7bb05f3f43c46d02a0409831eceb0d2).  No Python
package ships it: openlineage-python carries generated classes, not the schema.

Validated with jsonschema-rs (JSON Schema draft 2020-12, as the spec declares):
about 7 us per Airflow-sized event where the pure-Python ``jsonschema`` took
600-900 us, most of a core at 1,000 events/s (docs/lineage.md).  Draft 2020-12
treats ``format`` as an annotation: ``eventTime`` is parsed by event.py, which
refuses a time without a UTC offset.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

SPEC_FILE = "OpenLineage-2-0-2.json"
SPEC_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


class InvalidEvent(ValueError):
    """Not an OpenLineage event; the text names the field."""


def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath(SPEC_FILE).read_text(encoding="utf-8")
    )
    if data.get("$id") != SPEC_ID:  # a wrong file must not pass for the spec
        raise RuntimeError(f"{SPEC_FILE} is not {SPEC_ID}: $id {data.get('$id')!r}")
    return data


@cache
def _validator(run_event: bool) -> jsonschema_rs.Draft202012Validator:
    schema = spec()
    if run_event:
        # The root is oneOf RunEvent, DatasetEvent, JobEvent: an event with a
        # ``run`` can only be a RunEvent, and its errors read better against that.
        schema = {key: value for key, value in schema.items() if key != "oneOf"}
        schema["$ref"] = "#/$defs/RunEvent"
    return jsonschema_rs.Draft202012Validator(schema)


def validate(event: Any) -> bool:
    """True for a RunEvent, False for a valid DatasetEvent or JobEvent; InvalidEvent otherwise."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"<root>: expected a JSON object, got {type(event).__name__}")
    run_event = "run" in event
    validator = _validator(run_event)
    if not validator.is_valid(event):
        error = next(iter(validator.iter_errors(event)))
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.instance_path
        ).lstrip(".")
        raise InvalidEvent(f"{where or '<root>'}: {error.message[:300]}")
    return run_event
