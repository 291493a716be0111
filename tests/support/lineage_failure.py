"""A provider's OpenLineage failure kept in Redis by the exporter's own store, as
the lineage intake keeps it, for the responder tests that read it back."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from feedguard.exporter.lineage.event import LineageEvent
from feedguard.exporter.lineage.store import LineageStore


async def keep_lineage_failure(
    redis_url: str,
    provider: str,
    at: float,
    message: str,
    *,
    job: str = "external_data_ingest.run",
    event_type: str = "FAIL",
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        event = LineageEvent(
            event_type=event_type,
            event_time=at,
            run_id=str(uuid.uuid4()),
            job_namespace="airflow",
            job_name=job,
            outputs=(),
            conf={"provider": provider},
            error_message=message,
            dag_run_id=f"run-{uuid.uuid4()}",
        )
        assert await LineageStore(client, seen_ttl_seconds=3600).record_failure(
            event, provider, at + 1
        )
    finally:
        await client.aclose()
