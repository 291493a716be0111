"""disable_feeds (runbook 4) on a real Airflow 3 (/api/v2 variables) and the Airflow 2
stand-in (/api/v1)."""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowSettings
from feedguard.core.catalog import Catalog
from feedguard.responder.actions.disable_feeds import DisableFeeds
from feedguard.responder.plugins import ActionError

from .support.action_context import context, provider
from .support.airflow import AirflowInstance
from .support.fake_airflow2 import FakeAirflow2

CATALOG = Catalog(providers=(provider("ISO-NE"), provider("MISO")))


def enabled(value: str | None) -> dict[str, bool]:
    assert value is not None
    return {p["name"]: p["enabled"] for p in json.loads(value)["providers"]}


@pytest.fixture
def variable() -> str:
    return f"external_provider_config_{uuid.uuid4().hex[:8]}"


def test_one_target_per_provider_and_no_params() -> None:
    action = DisableFeeds(None, CATALOG, "external_provider_config")  # type: ignore[arg-type]  # targets() does no I/O
    (target,) = action.targets(context(provider("MISO")))
    assert target.resource == "airflow:variable:external_provider_config:MISO"
    assert target.description == "disable feed MISO in Airflow Variable external_provider_config"
    with pytest.raises(ActionError, match="it takes none"):
        action.targets(context(params={"feeds": ["x"]}))


@pytest.mark.airflow
async def test_on_airflow_3_two_feeds_disabled_and_the_value_restored_exactly(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, variable: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    action = DisableFeeds(client, CATALOG, variable)
    original = json.dumps(
        {"providers": [{"name": "ISO-NE", "enabled": True}, {"name": "MISO", "enabled": True}]}
    )
    await client.set_variable(variable, original)
    iso, miso = context(provider("ISO-NE")), context(provider("MISO"), incident_id="inc-2")
    (iso_target,) = action.targets(iso)
    (miso_target,) = action.targets(miso)
    first = await action.apply(iso, iso_target)
    assert first.changed is True
    assert enabled(await client.get_variable(variable)) == {"ISO-NE": False, "MISO": True}
    again = await action.apply(iso, iso_target)
    assert (again.changed, again.previous) == (False, first.previous)
    second = await action.apply(miso, miso_target)
    assert enabled(await client.get_variable(variable)) == {"ISO-NE": False, "MISO": False}
    # ISO-NE recovers first: the Variable changed since (MISO), so only its flag goes back.
    back = await action.revert(iso, iso_target, first.previous)
    assert back.changed is True
    assert enabled(await client.get_variable(variable)) == {"ISO-NE": True, "MISO": False}
    # MISO recovers: what it published is not there any more, its flag is: put back.
    await action.revert(miso, miso_target, second.previous)
    assert enabled(await client.get_variable(variable)) == {"ISO-NE": True, "MISO": True}
    await client.delete_variable(variable)


@pytest.mark.airflow
async def test_on_airflow_3_an_absent_variable_is_published_then_removed(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, variable: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    action = DisableFeeds(client, CATALOG, variable)
    ctx = context(provider("MISO"))
    (target,) = action.targets(ctx)
    assert await client.get_variable(variable) is None
    outcome = await action.apply(ctx, target)
    # feedguard's own catalog, with the feed off.
    assert enabled(await client.get_variable(variable)) == {"ISO-NE": True, "MISO": False}
    await action.revert(ctx, target, outcome.previous)
    assert await client.get_variable(variable) is None


@pytest.mark.airflow
async def test_on_airflow_3_an_operators_change_to_the_feed_is_left_alone(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, variable: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    action = DisableFeeds(client, CATALOG, variable)
    original = json.dumps({"providers": [{"name": "ISO-NE", "enabled": True}]})
    await client.set_variable(variable, original)
    ctx = context(provider("ISO-NE"))
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    operator = json.dumps({"providers": [{"name": "ISO-NE", "enabled": True, "note": "by hand"}]})
    await client.set_variable(variable, operator)
    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is False
    assert back.left_alone is not None
    assert "changed by someone else since" in back.left_alone
    assert await client.get_variable(variable) == operator
    await client.delete_variable(variable)


@pytest.fixture
async def airflow2(aiohttp_server) -> tuple[FakeAirflow2, AirflowSettings]:  # type: ignore[no-untyped-def]
    fake = FakeAirflow2(username="admin", password="secret")
    server = await aiohttp_server(fake.app())
    settings = AirflowSettings(
        base_url=str(server.make_url("")).rstrip("/"),
        version="2",
        username="admin",
        password="secret",
    )
    return fake, settings


async def test_on_airflow_2_v1_the_previous_value_is_restored_exactly(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    # Formatted by an operator: restored byte for byte, not re-serialised.
    original = '{"providers": [ {"name": "MISO", "enabled": true} ]}'
    fake.variables["external_provider_config"] = {"value": original, "description": "ops"}
    action = DisableFeeds(AirflowClient(session, settings), CATALOG, "external_provider_config")
    ctx = context(provider("MISO"))
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    stored = fake.variables["external_provider_config"]
    assert enabled(stored["value"]) == {"MISO": False}
    assert stored["description"] == "ops"  # update_mask=value: the description stays
    assert (
        "PATCH",
        "/api/v1/variables/external_provider_config?update_mask=value",
    ) in fake.requests
    await action.revert(ctx, target, outcome.previous)
    assert fake.variables["external_provider_config"]["value"] == original


async def test_on_airflow_2_an_absent_variable_is_created_with_post(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    action = DisableFeeds(AirflowClient(session, settings), CATALOG, "external_provider_config")
    ctx = context(provider("ISO-NE"))
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert ("POST", "/api/v1/variables") in fake.requests
    assert enabled(fake.variables["external_provider_config"]["value"]) == {
        "ISO-NE": False,
        "MISO": True,
    }
    await action.revert(ctx, target, outcome.previous)
    assert "external_provider_config" not in fake.variables


async def test_a_provider_missing_from_the_variable_is_refused(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    fake.variables["external_provider_config"] = {
        "value": json.dumps({"providers": [{"name": "EIA", "enabled": True}]}),
        "description": None,
    }
    action = DisableFeeds(AirflowClient(session, settings), CATALOG, "external_provider_config")
    ctx = context(provider("MISO"))
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError, match="has no provider 'MISO'"):
        await action.apply(ctx, target)
    assert not [r for r in fake.requests if r[0] in ("PATCH", "POST")]
