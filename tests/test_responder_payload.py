"""Payload parsing (Go timestamps, the zero time) and Alertmanager-style matchers."""

from __future__ import annotations

import pytest

from feedguard.responder.matchers import parse_matcher, parse_matchers
from feedguard.responder.payload import PayloadError, parse_timestamp


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2023-02-06T13:08:45.828Z", 1675688925.828),
        ("2018-08-03T09:52:26.739266876+02:00", 1533282746.739266876),
        ("2024-01-01T00:00:00Z", 1704067200.0),
        ("2024-01-01T00:00:00-05:30", 1704087000.0),
    ],
)
def test_go_timestamps(text: str, epoch: float) -> None:
    assert parse_timestamp(text, "x") == pytest.approx(epoch, abs=1e-6)


def test_zero_time_is_unset() -> None:
    assert parse_timestamp("0001-01-01T00:00:00Z", "alerts[0].endsAt") is None


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00", 5])
def test_bad_timestamps_name_the_field(text: object) -> None:
    with pytest.raises(PayloadError, match=r"^alerts\[2\]\.startsAt: "):
        parse_timestamp(text, "alerts[2].startsAt")


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('alertname="ExternalDataStale"', {"alertname": "ExternalDataStale"}, True),
        ('alertname="ExternalDataStale"', {"alertname": "ExternalDataStaleX"}, False),
        ('alertname=~"External.*Stale"', {"alertname": "ExternalDataStale"}, True),
        # Anchored like Alertmanager's: a partial match is no match.
        ('alertname=~"Stale"', {"alertname": "ExternalDataStale"}, False),
        ('severity!="info"', {"severity": "page"}, True),
        ('severity!~"info|ticket"', {"severity": "ticket"}, False),
        ('dag_id=""', {}, True),  # a missing label matches the empty string
        ("provider=ISO-NE", {"provider": "ISO-NE"}, True),  # unquoted value
    ],
)
def test_matchers(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


@pytest.mark.parametrize("text", ["alertname", '=~"x"', 'alertname=~"(unclosed"'])
def test_bad_matchers(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|invalid regex"):
        parse_matcher(text)


def test_values_unescape_as_alertmanager_does() -> None:
    assert parse_matcher(r'a="x\"y\\z\n\q"').value == 'x"y\\z\n\\q'
    assert parse_matcher("a = x y ").value == "x y"
    assert parse_matcher('team:ops=~"a|b"').name == "team:ops"
    first, second = parse_matchers('{alertname=~"External.*", note="a, \\"b\\""}')
    assert (first.op, second.value) == ("=~", 'a, "b"')


# Checked against the real amtool (tests/test_matchers_amtool.py): each rejected there.
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('alertname="a"b"', "unescaped double quote"),
        ('alertname="x', "unescaped double quote"),
        ('alertname=x"', "unescaped double quote"),
        ('alert.name="x"', "bad matcher format"),
        ('alertname=~"(?=x)y"', "lookahead"),
        ('alertname=~"(a)\\1"', "backreference"),
        ('alertname=~"a++"', "possessive"),
    ],
)
def test_what_alertmanager_rejects_is_rejected(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_matchers(text)
