"""The OpenAPI 3.1 document of this API (responder/openapi.yml), served as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = Path(__file__).with_name("openapi.yml")


def load_spec() -> dict[str, Any]:
    """The document as a dict; read once by ``create_app``, never on the event loop."""
    spec: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return spec
