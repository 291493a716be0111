from __future__ import annotations

import redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from feedguard.core.settings import RedisSettings
from feedguard.exporter.app import create_app
from feedguard.exporter.config import ExporterConfig

from .conftest import make_catalog


async def test_scrape_serves_freshness_and_probe(
    aiohttp_client, aiohttp_server, redis_url: str, redis_client: redis.Redis
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    provider_app = web.Application()
    provider_app.router.add_get("/health", ok)
    provider = await aiohttp_server(provider_app)

    catalog = make_catalog(
        {
            "EIA": {
                "datasets": ["a", "b"],
                "health_probe": {"url": str(provider.make_url("/health"))},
            }
        }
    )
    redis_client.set("external:last_success:EIA:a", "1700000000.5")
    redis_client.set("external:provider_status:EIA", '{"status": "degraded", "checked_at": 17}')
    config = ExporterConfig(catalog=catalog).model_copy(
        update={"redis": RedisSettings(url=redis_url)}
    )
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert (
        'external_data_last_success_timestamp{dataset="a",provider="EIA"} 1.7000000005e+09' in text
    )
    assert 'external_data_last_success_recorded{dataset="b",provider="EIA"} 0.0' in text
    assert 'external_provider_status{provider="EIA",status="degraded"} 1.0' in text
    assert 'external_provider_probe_success{provider="EIA"} 1.0' in text
    assert 'external_exporter_collector_up{collector="redis"} 1.0' in text
