"""Error lines from workload logs: found, redacted, bounded; credential notes."""

from __future__ import annotations

import pytest

from feedguard.responder.evidence.gather import credential_note, minutes
from feedguard.responder.evidence.lines import error_lines, is_error, redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "ERROR login failed password=hunter2 user=bob",
            "ERROR login failed password=*** user=bob",
        ),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ('{"level":"error","api_key":"k-123"}', '{"level":"error","api_key":"***"}'),
        ("GET /lmp?api_key=abc123&day=1 -> 401", "GET /lmp?api_key=***&day=1 -> 401"),
        ("postgres://ingest:s3cret@db:5432/x", "postgres://ingest:***@db:5432/x"),
        ("token eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl", "token ***"),
        ("client_secret: abc Exception", "client_secret: *** Exception"),
        ("INFO fetched 200 rows", "INFO fetched 200 rows"),
    ],
)
def test_redaction(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_error_lines_are_selected_timestamped_and_cut() -> None:
    text = (
        "2026-12-01T00:10:00.000000000Z INFO fine\n"
        "2026-12-01T00:11:00.000000000Z ERROR upstream 503 token=abc\n"
        "2026-12-01T00:12:00.000000000Z requests.exceptions.ConnectionError: refused\n"
        "no timestamp Traceback (most recent call last):\n"
        "2026-12-01T00:13:00.000000000Z level=error " + "x" * 500 + "\n"
    )
    found = error_lines(text, max_chars=40)
    assert [e.text for e in found[:2]] == [
        "ERROR upstream 503 token=***",
        "requests.exceptions.ConnectionError: re…",
    ]
    assert found[0].at == 1796083860.0
    assert found[2].at is None  # no timestamp: kept, time unknown
    assert len(found[3].text) == 40
    assert not is_error("INFO all good, 0 errors")


def test_credential_notes() -> None:
    first = 10_000.0
    assert credential_note(first - 720, None, first, first, 86400) == (
        "rotated 12 min before the first alert"
    )
    assert credential_note(first - 3 * 86400, None, first, first, 86400) is None
    assert credential_note(first + 300, None, first, first, 86400) == (
        "changed 5 min after the first alert"
    )
    assert credential_note(None, first - 7200, first, first, 86400) == "expired 2.0 h ago"
    assert credential_note(None, first + 3 * 86400, first, first, 86400) == "expires in 3.0 d"
    assert minutes(30) == "1 min"
