"""What an incident keeps of the exporter's lineage failure document (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feedguard.responder.lineage_failure import LINEAGE_FAILURE_MAX_AGE_SECONDS, lineage_failure

NOW = 1_800_000_000.0
DOC = {
    "provider": "ISO-NE",
    "event_type": "ABORT",
    "event_time": NOW - 60,
    "job": "external_data_ingest",
    "message": "x" * 3000,
}


def test_a_recent_failure_is_kept_with_its_message_bounded() -> None:
    assert lineage_failure(json.dumps(DOC).encode(), NOW) == {
        "job": "external_data_ingest",
        "event_type": "ABORT",
        "message": "x" * 2000,
        "at": NOW - 60,
    }


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"not json",
        b"[1]",
        json.dumps({**DOC, "event_time": "yesterday"}),
        json.dumps({**DOC, "event_time": True}),
        json.dumps({**DOC, "event_time": NOW - LINEAGE_FAILURE_MAX_AGE_SECONDS - 1}),
    ],
)
def test_no_failure_or_an_unreadable_or_old_one_is_nothing(raw: Any) -> None:
    assert lineage_failure(raw, NOW) is None


def test_fields_of_the_wrong_type_read_as_empty() -> None:
    raw = json.dumps({**DOC, "job": 3, "message": None, "event_type": []})
    assert lineage_failure(raw, NOW) == {"job": "", "event_type": "", "message": "", "at": NOW - 60}
