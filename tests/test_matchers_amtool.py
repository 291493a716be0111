"""Playbook matchers accept exactly what Alertmanager accepts: each case is run
through the real ``amtool check-config`` (a route's ``matchers:`` entry) and
through feedguard's parser, and both must agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from feedguard.core.schema import ConfigError
from feedguard.responder.config import load_config
from feedguard.responder.matchers import parse_matchers

from .support.services import require_binary

CASES = [
    'alertname="ExternalDataStale"',
    "alertname=ExternalDataStale",
    'alertname = "x" ',
    'alertname="a\\"b"',
    'alertname="x\\\\"',
    'alertname="\\n"',
    'alertname="é"',
    'alertname=""',
    'team:ops="x"',
    '{alertname="x", severity!="info"}',
    'alertname=~"External.*"',
    'alertname=~"\\\\d+"',
    'alertname!~"a{2,"',
    # Rejected by Alertmanager:
    'alertname="a"b"',
    'alertname="x',
    'alertname=x"',
    'alert.name="x"',
    "alertname",
    'alertname=~"(?=x)y"',
    'alertname=~"(?<!x)y"',
    'alertname=~"(a)\\\\1"',
    'alertname=~"a++"',
    'alertname=~"(unclosed"',
]


def amtool_accepts(amtool: str, matcher: str, tmp_path: Path) -> bool:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: r\n  routes:\n    - receiver: r\n"
        f"      matchers: [{json.dumps(matcher)}]\nreceivers:\n  - name: r\n"
    )
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    return done.returncode == 0


def ours_accept(matcher: str) -> bool:
    try:
        parse_matchers(matcher)
    except ValueError:
        return False
    return True


def test_feedguard_and_amtool_agree_on_every_case(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    verdicts = {m: (amtool_accepts(amtool, m, tmp_path), ours_accept(m)) for m in CASES}
    disagree = {m: v for m, v in verdicts.items() if v[0] != v[1]}
    assert disagree == {}, "(amtool, feedguard) differ"
    assert sum(1 for a, _ in verdicts.values() if not a) >= 8  # the rejections are exercised


@pytest.mark.parametrize("matcher", ['alertname="a"b"', 'alertname=~"(?=x)y"'])
def test_config_error_names_the_key(matcher: str, tmp_path: Path) -> None:
    path = tmp_path / "responder.yml"
    path.write_text(
        "playbooks:\n  - name: p\n"
        f"    matchers: [{json.dumps(matcher)}]\n"
        "    firing: [{action: pause_dags}]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    (line,) = [e for e in raised.value.errors if "matchers" in e]
    assert line.startswith(f"{path}: playbooks[0].matchers: item 0: ")
