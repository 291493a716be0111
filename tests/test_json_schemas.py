"""The committed JSON Schemas of the config files: generated from the models and current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "config" / "schema"


def test_schemas_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "config/schema/generate.py", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_files_point_editors_at_their_schema() -> None:
    for name in ("exporter", "responder", "external_providers"):
        first = (REPO / "config" / f"{name}.yml").read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=schema/{name}.schema.json"
        assert (SCHEMAS / f"{name}.schema.json").exists()


def test_schema_refuses_unknown_keys_and_carries_bounds() -> None:
    schema = json.loads((SCHEMAS / "exporter.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    probes = schema["$defs"]["ProbeSettings"]["properties"]
    assert probes["concurrency"] == {
        "default": 32,
        "exclusiveMinimum": 0,
        "title": "Concurrency",
        "type": "integer",
    }
    catalog = json.loads((SCHEMAS / "external_providers.schema.json").read_text("utf-8"))
    assert catalog["required"] == ["providers"]
