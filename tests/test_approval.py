"""The approval gate: a step marked ``approval: required`` waits in awaiting_approval
until an approver decides through the API, the incident page or the CLI, or the
timeout decides; exactly one decision wins across replicas (both stores)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from feedguard.responder import approval
from feedguard.responder import incidents as inc
from feedguard.responder.config import Step
from feedguard.responder.note_slots import due_notes
from feedguard.responder.store.redis import RedisStore
from feedguard.responder.store.sqlite import SqliteStore
from feedguard.responder.transitions import step_doc

from .conftest import REPO, make_catalog
from .support.airflow import AirflowInstance
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import (
    T0,
    CountingAction,
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"
APPROVALS = {
    "approvers": [{"name": "alice", "token": ALICE}, {"name": "bob", "token": BOB}],
}
GATED = "firing:provider-down:0"
PLAYBOOKS: list[dict[str, Any]] = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [
            {"action": "throttle_api", "approval": "required"},
            {"action": "pause_dags"},
        ],
        "resolved": [{"revert": "all"}],
    }
]


def actions() -> dict[str, CountingAction]:
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate"),
        "pause_dags": CountingAction("pause_dags", resource="airflow:dag:x"),
    }


def gated_config(tmp_path: Path, **overrides: Any) -> Any:
    return responder_config(
        tmp_path,
        catalog=make_catalog({"ISO-NE": {}}),
        playbooks=overrides.pop("playbooks", PLAYBOOKS),
        approvals=APPROVALS,
        **overrides,
    )


def store_options(store: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if store == "redis":
        return {"store": "redis", "redis_url": request.getfixturevalue("redis_url")}
    return {}


async def decide(
    r: Responder, ident: str, step: str, decision: str, token: str | None = ALICE
) -> tuple[int, Any]:
    url = f"{r.url}/api/v1/incidents/{quote(ident, safe='')}/steps/{quote(step, safe='')}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with r.session.post(f"{url}/{decision}", headers=headers) as response:
        return response.status, await response.json()


def step_of(incident: dict[str, Any], step: str) -> dict[str, Any]:
    return next(s for s in incident["steps"] if s["id"] == step)


# --- pure ------------------------------------------------------------------------------


def test_a_step_waits_and_takes_exactly_one_decision() -> None:
    doc = inc.new_incident("i-1", "ISO-NE", T0, None)
    gated = Step(action="throttle_api", approval="required")
    inc.enqueue(doc, "firing", "p", [step_doc(gated), step_doc(Step(action="pause_dags"))])
    item = inc.next_work(doc)
    assert item is not None
    assert approval.needs_approval(item)
    assert approval.request(doc, item["id"], T0, 1800, "deny")
    assert approval.request(doc, item["id"], T0, 1800, "deny") is False
    # The step after it waits too; the incident does not settle meanwhile.
    assert inc.next_work(doc) is item
    doc["state"] = inc.STABILISING
    assert inc.settled_state(doc) == inc.STABILISING
    assert due_notes(doc, T0, 3600) == [("initial", 0), ("approval", 0)]
    first = approval.decide(doc, item["id"], "approve", "alice", "api", T0 + 5)
    assert first.ok
    assert item["status"] == "pending"
    again = approval.decide(doc, item["id"], "deny", "bob", "page", T0 + 6)
    assert (again.ok, again.status) == (False, 409)
    assert again.error == (
        "step firing:p:0 was already approved by alice (via api); decisions are final"
    )
    assert item["decision"] == {"decision": "approved", "by": "alice", "via": "api", "at": T0 + 5}
    unknown = approval.decide(doc, "firing:p:9", "approve", "alice", "api", T0)
    assert (unknown.status, unknown.error) == (404, "incident i-1 has no step 'firing:p:9'")
    ungated = approval.decide(doc, "firing:p:1", "approve", "alice", "api", T0)
    assert ungated.error == "step firing:p:1 does not need approval"


def test_the_timeout_decides_and_recovery_withdraws_what_still_waits() -> None:
    doc = inc.new_incident("i-1", "ISO-NE", T0, None)
    steps = [step_doc(Step(action=a, approval="required")) for a in ("x", "y")]
    inc.enqueue(doc, "firing", "p", steps)
    approval.request(doc, "firing:p:0", T0, 60, "approve")
    assert approval.timed_out(doc, T0 + 59) == []
    assert approval.timed_out(doc, T0 + 60) == [("firing:p:0", "approve")]
    approval.decide(doc, "firing:p:0", "approve", "timeout", "timeout", T0 + 60)
    doc["work"][0]["status"] = "done"
    approval.request(doc, "firing:p:1", T0 + 61, 60, "deny")
    assert doc["work"][1]["approval_request"]["slot"] == 1
    assert approval.withdraw_firing(doc, T0 + 70) == 1
    assert doc["work"][1]["status"] == approval.WITHDRAWN
    late = approval.decide(doc, "firing:p:1", "approve", "alice", "api", T0 + 80)
    assert late.error == (
        "step firing:p:1 was already withdrawn by recovery (via recovery); decisions are final"
    )


def test_a_stricter_playbook_gates_a_step_another_planned_without() -> None:
    doc = inc.new_incident("i-1", "ISO-NE", T0, None)
    inc.enqueue(doc, "firing", "a", [step_doc(Step(action="throttle_api"))])
    inc.enqueue(doc, "firing", "b", [step_doc(Step(action="throttle_api", approval="required"))])
    (item,) = doc["work"]
    assert approval.needs_approval(item)


# --- through the responder -------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_approve_runs_the_step_and_a_second_decision_is_409(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    acts = actions()
    config = gated_config(tmp_path, **store_options(store, request))
    async with start_responder(config, clock=FakeClock(), actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert step_of(incident, GATED)["status"] == "awaiting_approval"
        assert acts["throttle_api"].attempts == 0
        assert acts["pause_dags"].attempts == 0  # waits behind the gated step
        assert incident["state"] == "stabilising"
        assert incident["awaiting_approval"] == 1
        # No token, a wrong one: 401, nothing decided.
        assert (await decide(r, incident["id"], GATED, "approve", None))[0] == 401
        assert (await decide(r, incident["id"], GATED, "approve", "nope"))[0] == 401
        status, body = await decide(r, incident["id"], GATED, "approve")
        assert status == 200
        assert (body["decision"], body["by"], body["via"]) == ("approved", "alice", "api")
        await r.settle()
        assert acts["throttle_api"].applied
        assert acts["pause_dags"].applied
        status, body = await decide(r, incident["id"], GATED, "deny", BOB)
        assert status == 409
        assert body["error"] == (
            f"step {GATED} was already approved by alice (via api); decisions are final"
        )
        assert body["decision"]["by"] == "alice"
        assert (await decide(r, incident["id"], "firing:provider-down:7", "deny"))[0] == 404
        assert (await decide(r, "no-such-incident", GATED, "deny"))[0] == 404
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        events = [e["event"] for e in incident["timeline"]]
        assert f"step {GATED} (throttle_api) awaits approval" in events
        decided = next(e for e in incident["timeline"] if e["event"].endswith("approved"))
        assert (decided["by"], decided["via"]) == ("alice", "api")
        metrics = await r.metrics()
        assert (
            'feedguard_responder_approval_decisions_total{decision="approved",via="api"} 1.0'
            in metrics
        )


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_a_denied_step_never_runs_and_recovery_does_not_revert_it(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    acts = actions()
    config = gated_config(tmp_path, **store_options(store, request))
    async with start_responder(config, clock=FakeClock(), actions=acts) as r:
        firing = alert("ISO-NE")
        await r.post(notification([firing]))
        await r.settle()
        ident = (await r.incident("ISO-NE"))["id"]
        status, body = await decide(r, ident, GATED, "deny", BOB)
        assert (status, body["decision"], body["by"]) == (200, "denied", "bob")
        await r.settle()
        assert acts["throttle_api"].attempts == 0
        assert acts["pause_dags"].applied  # the next step goes on
        incident = await r.incident("ISO-NE")
        assert step_of(incident, GATED)["status"] == "denied"
        assert [a["action"] for a in incident["actions"]] == ["pause_dags"]
        await r.post(notification([resolved(firing)]))
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "resolved"
        assert acts["throttle_api"].reverted == []
        assert [t for _, t, _ in acts["pause_dags"].reverted] == ["pause_dags #0"]


@pytest.mark.parametrize("on_timeout", ["deny", "approve"])
async def test_the_timeout_decides_after_n_minutes(tmp_path: Path, on_timeout: str) -> None:
    acts = actions()
    playbooks = [
        {
            **PLAYBOOKS[0],
            "firing": [
                {"action": "throttle_api", "approval": "required", "approval_timeout_minutes": 10}
                | ({"approval_on_timeout": "approve"} if on_timeout == "approve" else {}),
                {"action": "pause_dags"},
            ],
        }
    ]
    clock = FakeClock()
    config = responder_config(
        tmp_path, catalog=make_catalog({"ISO-NE": {}}), playbooks=playbooks, approvals=APPROVALS
    )
    async with start_responder(config, clock=clock, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        clock.advance(599)
        await r.tick()
        assert step_of(await r.incident("ISO-NE"), GATED)["status"] == "awaiting_approval"
        clock.advance(1)
        await r.tick()
        incident = await r.incident("ISO-NE")
        gated = step_of(incident, GATED)
        assert gated["decision"]["by"] == "timeout"
        assert gated["approval_request"]["deadline_at"] == T0 + 600
        if on_timeout == "approve":
            assert (gated["status"], gated["decision"]["decision"]) == ("done", "approved")
            assert acts["throttle_api"].applied
        else:
            assert (gated["status"], gated["decision"]["decision"]) == ("denied", "denied")
            assert acts["throttle_api"].attempts == 0
        assert acts["pause_dags"].applied
        status, body = await decide(r, incident["id"], GATED, "approve")
        assert status == 409
        assert "by timeout (via timeout)" in body["error"]


async def test_two_responders_on_one_redis_race_and_exactly_one_wins(
    tmp_path: Path, redis_url: str
) -> None:
    acts = actions()
    configs = [
        responder_config(
            tmp_path / name,
            catalog=make_catalog({"ISO-NE": {}}),
            playbooks=PLAYBOOKS,
            approvals=APPROVALS,
            store="redis",
            redis_url=redis_url,
        )
        for name in ("a", "b")
    ]
    clock = FakeClock()
    async with (
        start_responder(configs[0], clock=clock, actions=acts) as one,
        start_responder(configs[1], clock=clock, actions=acts) as two,
    ):
        await one.post(notification([alert("ISO-NE")]))
        await one.settle()
        ident = (await one.incident("ISO-NE"))["id"]
        for _ in range(3):  # a few rounds: each starts from the waiting step
            results = await asyncio.gather(
                decide(one, ident, GATED, "approve", ALICE),
                decide(two, ident, GATED, "deny", BOB),
                decide(one, ident, GATED, "deny", BOB),
                decide(two, ident, GATED, "approve", ALICE),
            )
            statuses = sorted(status for status, _ in results)
            assert statuses == [200, 409, 409, 409]
            (winner,) = [body for status, body in results if status == 200]
            await asyncio.gather(one.settle(), two.settle())
            incident = await two.incident("ISO-NE")
            gated = step_of(incident, GATED)
            assert gated["decision"]["by"] == winner["by"]
            decisions = [
                e for e in incident["timeline"] if e["event"].startswith(f"step {GATED} (")
            ]
            assert len([e for e in decisions if "by" in e]) == 1
            # Put the step back to waiting for the next round (as a fresh incident would).
            await _rearm(one, ident)
        assert len(acts["throttle_api"].applied) <= 3


async def _rearm(r: Responder, ident: str) -> None:
    def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
        assert doc is not None
        item = approval.find(doc, GATED)
        assert item is not None
        item.pop("decision")
        item["status"] = approval.AWAITING
        doc["timeline"] = [e for e in doc["timeline"] if "by" not in e]
        return doc, None

    await r.engine.store.update("incident", ident, change)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_the_store_compare_and_set_lets_one_of_many_concurrent_decisions_win(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "redis":
        url = request.getfixturevalue("redis_url")
        stores: list[Any] = [RedisStore(url), RedisStore(url)]
    else:
        stores = [SqliteStore(str(tmp_path / "one.db"))]
    for s in stores:
        await s.open()
    try:
        doc = inc.new_incident("i-1", "ISO-NE", T0, None)
        inc.enqueue(doc, "firing", "p", [step_doc(Step(action="x", approval="required"))])
        approval.request(doc, "firing:p:0", T0, 60, "deny")
        await stores[0].update("incident", "i-1", lambda _: (doc, None))

        def attempt(who: str) -> Any:
            def change(current: dict[str, Any] | None) -> tuple[Any, Any]:
                assert current is not None
                result = approval.decide(current, "firing:p:0", "approve", who, "api", T0)
                return (current if result.ok else None), result.ok

            return change

        names = [f"approver-{n}" for n in range(20)]
        won = await asyncio.gather(
            *(
                stores[n % len(stores)].update("incident", "i-1", attempt(w))
                for n, w in enumerate(names)
            )
        )
        assert won.count(True) == 1
        final = await stores[-1].get("incident", "i-1")
        assert final["work"][0]["decision"]["by"] == names[won.index(True)]
    finally:
        for s in stores:
            await s.close()


# --- the note, the page, the CLI ----------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token="xoxb-approval") as fake:
        yield fake


async def test_the_note_says_a_step_waits_with_a_link_to_the_incident_page(
    tmp_path: Path, slack: FakeSlack
) -> None:
    config = responder_config(
        tmp_path,
        catalog=make_catalog({"ISO-NE": {}}),
        playbooks=PLAYBOOKS,
        approvals=APPROVALS,
        external_url="https://feedguard.example.com/",
        notes={"slack_token": "xoxb-approval", "base_url": slack.api_url},
    )
    async with start_responder(config, clock=FakeClock(), actions=actions()) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        ident = (await r.incident("ISO-NE"))["id"]
        await r.tick()
        texts = [m.text for m in slack.messages]
        assert len(texts) == 2, texts
        note = texts[1]
        assert note.startswith(":raised_hand: *[")
        assert f"step `{GATED}`: *throttle_api* waits since" in note
        assert f"<https://feedguard.example.com/incidents/{ident}|on the incident page>" in note
        assert f"feedguard-responder approve|deny {ident} STEP" in note
        assert slack.messages[1].thread_ts == slack.messages[0].ts
        await r.tick()
        assert len(slack.messages) == 2  # one note per request


async def _page_post(r: Responder, path: str, **kwargs: Any) -> int:
    async with r.session.post(f"{r.url}{path}", allow_redirects=False, **kwargs) as response:
        await response.read()
        return response.status


async def test_the_page_form_decides_with_csrf_and_an_approvers_token(tmp_path: Path) -> None:
    acts = actions()
    config = responder_config(
        tmp_path, catalog=make_catalog({"ISO-NE": {}}), playbooks=PLAYBOOKS, approvals=APPROVALS
    )
    async with start_responder(config, clock=FakeClock(), actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        ident = (await r.incident("ISO-NE"))["id"]
        async with r.session.get(f"{r.url}/incidents/{ident}") as page:
            html = await page.text()
            csrf = page.cookies["feedguard_csrf"].value
        form = f"/incidents/{ident}/steps/{quote(GATED, safe='')}"
        assert f'action="{form}/approve"' in html
        assert f'formaction="{form}/deny"' in html
        jar = {"Cookie": f"feedguard_csrf={csrf}"}
        good = {"token": BOB, "csrf_token": csrf}
        assert await _page_post(r, f"{form}/approve", data=good) == 403  # no cookie
        assert (
            await _page_post(r, f"{form}/approve", data={**good, "token": "x"}, headers=jar) == 401
        )
        assert acts["throttle_api"].attempts == 0
        assert await _page_post(r, f"{form}/approve", data=good, headers=jar) == 303
        await r.settle()
        assert acts["throttle_api"].applied
        assert await _page_post(r, f"{form}/deny", data=good, headers=jar) == 409
        async with r.session.get(f"{r.url}/incidents/{ident}") as page:
            html = await page.text()
        assert "Approved by <strong>bob</strong> (via page)" in html
        gated = step_of(await r.incident("ISO-NE"), GATED)
        assert (gated["decision"]["by"], gated["decision"]["via"]) == ("bob", "page")


async def test_the_cli_decides_through_a_running_responder(tmp_path: Path) -> None:
    acts = actions()
    config = responder_config(
        tmp_path, catalog=make_catalog({"ISO-NE": {}}), playbooks=PLAYBOOKS, approvals=APPROVALS
    )
    token_file = tmp_path / "token"
    token_file.write_text(ALICE + "\n")
    async with start_responder(config, clock=FakeClock(), actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        ident = (await r.incident("ISO-NE"))["id"]

        async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "feedguard.responder",
                *args,
                "--url",
                r.url,
                cwd=REPO,
                env={k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
                | (env or {}),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

        code, _, err = await cli("approve", ident, GATED)
        assert (code, err.strip()) == (
            2,
            "feedguard-responder approve: no approver token: pass --token-file or set "
            "FEEDGUARD_APPROVER_TOKEN",
        )
        code, _, err = await cli("approve", ident, GATED, env={"FEEDGUARD_APPROVER_TOKEN": "x"})
        assert code == 1
        assert "HTTP 401" in err
        code, out, _ = await cli("approve", ident, GATED, "--token-file", str(token_file))
        assert code == 0
        assert out.startswith(f"step {GATED} of incident {ident}: approved by alice at ")
        await r.settle()
        assert acts["throttle_api"].applied
        code, _, err = await cli("deny", ident, GATED, env={"FEEDGUARD_APPROVER_TOKEN": BOB})
        assert code == 1
        assert err.strip() == (
            f"feedguard-responder deny: HTTP 409: step {GATED} was already approved by alice "
            "(via api); decisions are final"
        )


# --- the proof: through the webhook, on the real Airflow 3 ------------------------


@pytest.mark.airflow
async def test_through_the_webhook_on_airflow_3_and_runtime_config(
    tmp_path: Path, airflow_instance: AirflowInstance
) -> None:
    """pause_dags waits for approval and pauses the real DAGs once approved;
    reduce_batch_size is denied and the runtime-config value is never touched, and
    recovery unpauses only what ran."""
    dags = ("external_data_ingest", "external_backfill")
    for dag in dags:
        airflow_instance.set_paused(dag, False)
    fake = FakeRuntimeConfig(token="rc-token")
    fake.features["external_ingest"] = {"enabled": True, "configuration": {"batch_size": 2000}}
    airflow = airflow_instance.settings()
    playbooks = [
        {
            "name": "provider-down",
            "matchers": ['alertname="ExternalProviderDown"'],
            "firing": [
                {"action": "pause_dags", "approval": "required"},
                {"action": "reduce_batch_size", "approval": "required"},
            ],
            "resolved": [{"revert": "all"}],
        }
    ]
    async with fake.serve() as rc_url:
        config = responder_config(
            tmp_path,
            catalog=make_catalog({"ISO-NE": {"dags": list(dags)}}),
            playbooks=playbooks,
            approvals=APPROVALS,
            actions={
                "airflow": {
                    "base_url": airflow.base_url,
                    "version": "3",
                    "username": airflow.username,
                    "password": airflow.password,
                },
                "runtime_config": {"base_url": rc_url, "token": "rc-token"},
            },
        )
        try:
            async with start_responder(config, clock=FakeClock()) as r:
                firing = alert("ISO-NE")
                await r.post(notification([firing]))
                await r.settle()
                ident = (await r.incident("ISO-NE"))["id"]
                assert not any(airflow_instance.is_paused(d) for d in dags)
                status, _ = await decide(r, ident, "firing:provider-down:0", "approve")
                assert status == 200
                await r.settle()
                assert all(airflow_instance.is_paused(d) for d in dags)
                incident = await r.incident("ISO-NE")
                batch = step_of(incident, "firing:provider-down:1")
                assert batch["status"] == "awaiting_approval"
                status, _ = await decide(r, ident, "firing:provider-down:1", "deny", BOB)
                assert status == 200
                await r.settle()
                assert fake.posts() == []
                assert fake.features["external_ingest"]["configuration"]["batch_size"] == 2000
                await r.post(notification([resolved(firing)]))
                await r.tick()
                incident = await r.incident("ISO-NE")
                assert incident["state"] == "resolved"
                assert not any(airflow_instance.is_paused(d) for d in dags)
                assert fake.posts() == []  # nothing of the denied step to undo
                undone = [a["action"] for a in incident["actions"] if a["phase"] == "recovery"]
                assert undone == ["pause_dags", "pause_dags"]
        finally:
            for dag in dags:
                airflow_instance.set_paused(dag, False)


def test_simulate_shows_what_a_gated_step_waits_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from feedguard.responder.__main__ import main

    config = tmp_path / "responder.yml"
    config.write_text(
        f"catalog_file: {REPO / 'config/external_providers.yml'}\n"
        "approvals: {timeout_minutes: 20}\n"
        "playbooks:\n"
        "  - name: provider-down\n"
        "    matchers: ['alertname=\"ExternalProviderDown\"']\n"
        "    firing:\n"
        "      - {action: pause_dags, approval: required, approval_on_timeout: approve}\n"
        "      - {action: throttle_api}\n"
    )
    payload = str(REPO / "examples/alertmanager-webhook.json")
    assert main(["simulate", "--config", str(config), payload]) == 0
    plan = json.loads(capsys.readouterr().out)
    gated, plain = plan["alerts"][0]["steps"]
    assert gated["approval"] == {"required": True, "timeout_minutes": 20.0, "on_timeout": "approve"}
    assert "approval" not in plain


def test_approver_tokens_come_from_files_relative_to_the_config(tmp_path: Path) -> None:
    from feedguard.responder.config import load_config

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "alice").write_text(ALICE + "\n")
    config_file = tmp_path / "responder.yml"
    config_file.write_text(
        f"catalog_file: {REPO / 'config/external_providers.yml'}\n"
        "approvals:\n"
        "  approvers: [{name: alice, token_file: secrets/alice}]\n"
    )
    config = load_config(config_file, environ={})
    assert config.approver_tokens() == {ALICE: "alice"}
    # With no approvers listed, the features token decides, under its own name.
    fallback = load_config(config_file, environ={"FEEDGUARD_APPROVALS_APPROVERS": "[]"})
    assert fallback.approver_tokens() == {}
    flags = load_config(
        config_file,
        environ={"FEEDGUARD_APPROVALS_APPROVERS": "[]", "FEEDGUARD_FEATURES_TOKEN": "f-token"},
    )
    assert flags.approver_tokens() == {"f-token": "features-token"}
